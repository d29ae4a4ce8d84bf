# mars.ko refuses out-of-range and malformed parameters with a clear message and leaves nothing behind.
# timeout: 180
cluster_run_all 1 bad-params.sh
