# A two-node cluster over IPv6 addresses: create, join, tree exchange, view.
# timeout: 240
cluster_run_all 2 ipv6.sh
