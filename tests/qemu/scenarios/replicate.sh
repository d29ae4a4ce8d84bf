# A resource replicates: node1 primary, node2 joins as a secondary before any data is written
# (both data disks start zeroed, so the log alone carries the whole history). ext4 and fio with
# verify on the primary, a log rotation in between; the secondary fetches the primary's logfiles
# over the replication channel and replays them; once its replay position reaches the end of the
# primary's log the two data devices have equal SHA-256. No /dev/mars/r0 on the secondary.
# timeout: 480
DATA_MB=128 MARS_MB=384
cluster_run_all 2 replicate.sh
