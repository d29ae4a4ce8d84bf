# Power cuts: the VM is killed (QEMU SIGKILL, no shutdown) in the middle of a write workload 10
# times; after each restart `marsadm up` replays the log and every acknowledged write must be on
# the data disk and on /dev/mars/r0. A last boot checks once more and shuts down cleanly.
# timeout: 1200
DATA_MB=128 MARS_MB=512
rounds=${CRASH_ROUNDS:-10}
cluster_init 1
for ((round = 1; round <= rounds; round++)); do
  node_start 1 crash-round.sh "$round"
  for ((t = 0; t < 600; t++)); do
    [ -e "$OUT/writing.$round" ] && break
    if ! kill -0 "${NODE_PGID[1]}" 2>/dev/null; then
      echo "round $round: the VM ended before writing; its log:" >&2
      tail -20 "$OUT/node1.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  [ -e "$OUT/writing.$round" ] || { echo "round $round: writers never started" >&2; exit 1; }
  sleep $((2 + RANDOM % 4))
  node_kill 1
  echo "round $round: killed after $(cat "$OUT"/journal.* | wc -l) acknowledged writes in all"
done
node_start 1 crash-round.sh $((rounds + 1)) final
node_wait 1 || { echo "final check failed:" >&2; tail -20 "$OUT/node1.log" >&2; exit 1; }
grep -h "blocks checked" "$OUT/node1.log" | tail -4
node_check_kernel 1
