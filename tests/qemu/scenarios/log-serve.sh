# What a primary's server lets secondaries fetch of its log (replication channel, log-list and
# log-fetch, from an independent client): only durable records of the logfile being written (the
# logger flushes at least once a second), a rotated logfile whole, a fetch resumed where the
# copy ends; every copy equal to the primary's logfile up to its length.
# timeout: 240
DATA_MB=128 MARS_MB=256
cluster_run_all 1 log-serve.sh
