# log-delete on a primary keeps what a lagging secondary still needs: node2 syncs, then pauses
# its fetch; node1 writes through three more logfiles and deletes logs: the logfile node2's
# replay stands in and every later one stay. Then node1 deletes again leaving node2 behind
# (`--leave-behind node2`): all but the current logfile go. node2 resumes, finds its logfiles
# gone (needs-sync), fast-syncs the 7 MiB that changed, catches up (equal SHA-256) and deletes
# its copies that replay is past; then node1's log-delete removes all but the current.
# timeout: 600
DATA_MB=64 MARS_MB=384
cluster_run_all 2 log-delete-peers.sh
