# Two members lose their link for 30 s: both go on, each shows the other unreachable with its
# last contact; after the heal they reconnect on their own and converge.
# timeout: 360
cluster_run_all 2 cluster-partition.sh
