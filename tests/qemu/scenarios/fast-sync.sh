# A fast sync of identical disks: both data disks start zeroed, node1 writes 2 MiB through its
# resource, node2 joins; its sync compares digests and copies only the blocks that differ (less
# than 5% of the device crosses the link), and the devices end equal. `invalidate` syncs again
# (fast: almost nothing crosses), `invalidate --full` copies every block; equal after each.
# timeout: 900
DATA_MB=96 MARS_MB=384
cluster_run_all 2 fast-sync.sh
