# Logfile and resource administration on one node: every primary start opens a new logfile;
# log-rotate continues in a new logfile; log-delete removes the logfiles fully applied to the data disk and keeps the one being written;
# delete-resource removes the resource's keys and logfiles; the name can then be used again.
# timeout: 240
DATA_MB=128 MARS_MB=256
cluster_run_all 1 log-admin.sh
