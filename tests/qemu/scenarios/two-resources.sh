# Two resources on one node at once, on two halves of the data disk (loop devices): concurrent fio with
# crc32c verify on both, ext4 on both, and switching one (rotate, secondary, down, up, primary)
# while the other keeps serving I/O and keeps its data.
# timeout: 480
DATA_MB=320 MARS_MB=512
cluster_run_all 1 two-resources.sh
