# Three nodes form a cluster over kernel TCP: create on node1, join from node2 (by address) and
# node3 (by host name, through node2); refusals of join-cluster; a key written on any host is on
# all within two rounds; view shows three members connected; rmmod with peers connected.
# timeout: 420
cluster_run_all 3 cluster-join.sh
