# The kernel's strategy thread reads the /mars tree and publishes this host's status into it;
# marsadm create-cluster writes the tree with the same format, and refuses bad situations.
# timeout: 180
cluster_run_all 1 cluster-tree.sh
