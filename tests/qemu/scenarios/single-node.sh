# One node, one resource: /dev/mars/r0 through the transaction logger. fio with crc32c verify on
# the raw device and on ext4; the data disk then equals the device; secondary and down are refused
# while the device is in use, and work when it is not.
# timeout: 420
DATA_MB=256 MARS_MB=512
cluster_run_all 1 single-node.sh
