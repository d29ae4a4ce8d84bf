# A resource replicates: node1 primary, node2 joins as a secondary before any data is written
# (both data disks start zeroed, so the log alone carries the whole history). ext4 and fio with
# verify on the primary, a log rotation in between; the secondary fetches the primary's logfiles
# over the replication channel and replays them; once its replay position reaches the end of the
# primary's log the two data devices have equal SHA-256. No /dev/mars/r0 on the secondary.
# node2's replay is paused until it has fetched everything; then 4 bytes at 1 MiB of its copy of
# the first logfile are overwritten: replay must find the record that no longer checks, the copy
# be cut back there and fetched again (dmesg says so), and the devices still end equal.
# timeout: 480
DATA_MB=128 MARS_MB=384
cluster_run_all 2 replicate.sh
