# A damaged logfile: replay stops at the last good record with a clear message in dmesg and in
# the resource's error key; the writes before the damage are on the data disk, the damaged one
# and those after it are not applied.
# timeout: 240
DATA_MB=128 MARS_MB=256
cluster_run_all 1 corrupt-log.sh
