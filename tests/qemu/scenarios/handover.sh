# Planned handover between three hosts: node1 primary with ext4, node2 and node3 synced
# secondaries; node3 pauses its fetch before node1 writes. `marsadm primary r0` on node2 is
# refused while node1 has the filesystem mounted; once unmounted it succeeds: node2 logs into
# the logfile numbered after node1's last, with node1's files intact and every write of node1 in
# it. node2 writes more; node1, now a secondary, follows node2's log; node3 resumes and fetches
# node1's logfiles from node2 (which serves its copies of them) and then node2's. Then back to
# node1 the same way. Each secondary ends equal (SHA-256) to the primary of the moment.
# timeout: 900
DATA_MB=96 MARS_MB=384
cluster_run_all 3 handover.sh
