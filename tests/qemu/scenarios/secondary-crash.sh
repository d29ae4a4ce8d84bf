# The secondary loses power 5 times, on disks with a volatile write cache (volatile_disk.py:
# unflushed writes are lost at each cut): twice during its sync (limited to 2 MiB/s so that it
# lasts), three times while it fetches and replays what node1 goes on writing (4 KiB random
# writes, a log rotation every 20 s). Each boot checks that the positions stored before the
# cut are still there and that the sync resumed from its stored position, not from zero; replay
# goes on from its stored position. A sixth boot waits for replay: the two data devices end
# with equal SHA-256 and node2 consistent.
# timeout: 1500
DATA_MB=128 MARS_MB=384 VOLATILE=1
cluster_init 2
node_start 1 secondary-crash.sh 0 || exit 1
node_start 2 secondary-crash.sh 1 || exit 1
for ((boot = 1; boot <= 5; boot++)); do
  for ((t = 0; t < 3000; t++)); do
    [ -e "$OUT/mark.ready-$boot.2" ] && break
    kill -0 "${NODE_PGID[2]}" 2>/dev/null || { echo "boot $boot of node2 ended early:" >&2; tail -20 "$OUT/node2.log" >&2; exit 1; }
    sleep 0.2
  done
  [ -e "$OUT/mark.ready-$boot.2" ] || { echo "boot $boot of node2 never got ready" >&2; exit 1; }
  sleep $((2 + RANDOM % 5))
  node_kill 2
  sleep 0.5   # the disk server carries out the power cut when it sees the connections end
  echo "boot $boot: node2 killed while in $(cat "$OUT/phase.$boot")"
  node_start 2 secondary-crash.sh $((boot + 1)) || exit 1
done
fail=0
for k in 1 2; do
  node_wait "$k" || { echo "node$k failed; its log:" >&2; tail -20 "$OUT/node$k.log" >&2; fail=1; }
done
grep -h "power cut" "$OUT/volatile_disk.log" | tail -5
exit $fail
