# A member loses power: the other shows it down (connection, heartbeat); restarted, it is back
# in the cluster without any admin step (the module loads, /mars is mounted, nothing else).
# timeout: 420
cluster_init 2
node_start 1 cluster-restart.sh || exit 1
node_start 2 cluster-restart.sh || exit 1
for t in $(seq 1 300); do [ -e "$OUT/mark.up.2" ] && break; sleep 1; done
[ -e "$OUT/mark.up.2" ] || { echo "node2 never joined" >&2; exit 1; }
node_kill 2
touch "$OUT/killed"
for t in $(seq 1 120); do [ -e "$OUT/mark.seen-down.1" ] && break; sleep 1; done
[ -e "$OUT/mark.seen-down.1" ] || { echo "node1 never saw node2 down" >&2; exit 1; }
node_start 2 cluster-restart.sh || exit 1
fail=0
for k in 1 2; do
  node_wait "$k" || { echo "node$k failed; its log:" >&2; tail -20 "$OUT/node$k.log" >&2; fail=1; }
done
exit $fail
