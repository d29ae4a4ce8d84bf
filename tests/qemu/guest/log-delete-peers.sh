# Guest side of scenarios/log-delete-peers.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
logs() { ls /mars/resource-r0 | grep "^log-.*-node1\$" | tr '\n' ' '; }
seq_of() { local n=${1#log-}; echo $((10#${n%%-*})); }

SIZE=$((32 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1)
  create_primary r0 $SIZE
  wait_mark 2 240 paused
  stands=$(cat "$OUT/stands")
  for i in 1 2 3; do
    dd if=/dev/urandom of=/dev/mars/r0 bs=1M seek=$((4 * i)) count=2 oflag=direct status=none
    marsadm log-rotate r0
  done
  # Into the current logfile too, so that node2's replay ends up in it.
  dd if=/dev/urandom of=/dev/mars/r0 bs=1M seek=20 count=1 oflag=direct status=none
  # node2's replay position must have reached this host's tree before the delete counts on it.
  wait_for "[ \"\$(tree_value resource-r0/replay-node2)\" = \"$stands\" ]" 30
  marsadm log-delete r0
  echo "after log-delete with node2 at $stands: $(logs)"
  need=$(seq_of "${stands%%,*}")
  for l in $(logs); do [ "$(seq_of "$l")" -ge "$need" ] || fail "kept $l though node2 needs only $need on"; done
  [ -e "/mars/resource-r0/${stands%%,*}" ] || fail "deleted ${stands%%,*}, which node2 still needs: $(logs)"
  [ "$(logs | wc -w)" -ge 4 ] || fail "deleted logfiles node2 still needs: $(logs)"
  dmesg | grep -q "keeping logfile $need and later for node2" || fail "no message about the logfiles kept for node2"
  # The administrator leaves node2 behind: everything but the current logfile goes.
  expect_fail marsadm log-delete r0 --leave-behind node9
  marsadm log-delete r0 --leave-behind node2
  echo "after log-delete leaving node2 behind: $(logs)"
  [ "$(logs | wc -w)" -eq 1 ] || fail "log-delete --leave-behind node2 left $(logs)"
  sync; sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  mark written
  wait_mark 2 300 caught-up
  cur=$(tree_value resource-r0/actual-node1/log | cut -d, -f1)
  wait_for "tree_value resource-r0/replay-node2 | grep -q '^$cur,'" 30
  marsadm log-delete r0
  echo "after node2 caught up: $(logs)"
  [ "$(logs | wc -w)" -eq 1 ] || fail "log-delete left $(logs) after node2 caught up"
  mark deleted
  ;;
2)
  join_secondary r0
  marsadm wait-sync r0 --timeout 120
  marsadm wait-replay r0 --timeout 120
  marsadm pause-fetch r0
  tree_value resource-r0/replay-node2 >"$OUT/stands"
  echo "paused at $(cat "$OUT/stands")"
  mark paused
  wait_mark 1 300 written
  synced=$(tree_value resource-r0/syncstatus-node2)
  marsadm resume-fetch r0
  # Its logfiles are gone on the primary: it shows needs-sync and fast-syncs.
  wait_for "[ \"\$(tree_value resource-r0/syncstatus-node2)\" != '$synced' ]" 60
  echo "left behind: sync $(tree_value resource-r0/syncstatus-node2), $(tree_value resource-r0/actual-node2/fetch-state)"
  marsadm wait-sync r0 --timeout 240
  marsadm wait-replay r0 --timeout 240
  moved=$(sync_field r0 4)
  echo "fast sync after being left behind: $moved bytes crossed"
  [ "$moved" -ge $((7 << 20)) ] && [ "$moved" -le $((12 << 20)) ] || fail "$moved bytes crossed for 7 changed MiB"
  [ "$(device_sha /dev/vda $SIZE)" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs"
  # Copies replay is past are gone; the one replay stands in stays.
  wait_for "[ \"\$(logs | wc -w)\" -le 1 ]" 10
  echo "copies left here: $(logs)"
  mark caught-up
  wait_mark 1 120 deleted
  ;;
esac
barrier done 120
unload_mars
echo "log-delete-peers OK"
