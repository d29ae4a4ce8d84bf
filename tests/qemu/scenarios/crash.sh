# Power cuts with a volatile disk cache: every disk of the VM (data disks and /mars) loses the
# writes no flush covered when the VM is killed (QEMU SIGKILL), except for each one's chance of
# having reached the disk anyway (tests/qemu/volatile_disk.py, VOLATILE_KEEP, from the seed).
# 4 times (CRASH_ROUNDS), in the middle of a workload: on r0 (raw) 2 writers with FUA writes (O_DSYNC) and 2
# with plain writes and a flush every 8 (odd rounds) or 4 that flush every 64 (even rounds, so
# that unflushed log records are in the cache at the cut); on r1, ext4 with fsync()ed files. After each restart
# `marsadm up` replays the logs, and every write whose FUA or flush had completed must be on the
# data disk and on /dev/mars/r0, ext4 on /dev/mars/r1 must be clean (e2fsck -fn after journal
# recovery) and hold every fsync()ed file. A last boot checks once more and shuts down cleanly.
# timeout: 1200
DATA_MB=128 MARS_MB=512 EXTRA_MB=64 VOLATILE=1
# Four rounds keep two of each kind; each costs a boot, about 100 s on a slow 2-core host.
rounds=${CRASH_ROUNDS:-4}
cluster_init 1
for ((round = 1; round <= rounds; round++)); do
  node_start 1 crash-round.sh "$round"
  # A boot, the replay and the checks of everything flushed so far come first: on a slow host
  # that took more than 120 s.
  for ((t = 0; t < 3000; t++)); do
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
  sleep 0.5   # the disk server carries out the power cut when it sees the connections end
  echo "round $round: killed after $(cat "$OUT"/journal.* | wc -l) flushed block writes and $(wc -l <"$OUT/files.journal") fsynced files in all"
done
node_start 1 crash-round.sh $((rounds + 1)) final
node_wait 1 || { echo "final check failed:" >&2; tail -20 "$OUT/node1.log" >&2; exit 1; }
grep -h "checked" "$OUT/node1.log" | tail -3
grep -h "power cut" "$OUT/volatile_disk.log" | tail -3
