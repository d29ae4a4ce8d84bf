# Guest side of scenarios/secondary-crash.sh: node1 boots once (argument 0), node2 six times
# (argument: its boot number).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((96 << 20))
BOOT=$1

# Whether replay position $1 (log-SEQ-ORIGIN,OFFSET) is at or past $2.
pos_ge() {
  local a=$1 b=$2 sa sb
  sa=$(echo "$a" | sed 's/^log-0*\([0-9]*\)-.*,\([0-9]*\)$/\1 \2/')
  sb=$(echo "$b" | sed 's/^log-0*\([0-9]*\)-.*,\([0-9]*\)$/\1 \2/')
  read -r a_seq a_off <<<"$sa"; read -r b_seq b_off <<<"$sb"
  [ "$a_seq" -gt "$b_seq" ] || { [ "$a_seq" -eq "$b_seq" ] && [ "$a_off" -ge "$b_off" ]; }
}

# The DONE of a stored syncstatus (`DONE/TOTAL[ full]`), 0 for `wanted` or none.
stored_done() { local s; s=$(tree_value resource-r0/syncstatus-node2 || true); case $s in */*) echo "${s%%/*}" ;; *) echo 0 ;; esac; }

# Marks this boot ready for its power cut, in phase $1, remembering what it saw.
ready() {
  echo "$1" >"$OUT/phase.$BOOT"
  stored_done >"$OUT/seen-sync.$BOOT"
  tree_value resource-r0/replay-node2 >"$OUT/seen-replay.$BOOT" || echo "" >"$OUT/seen-replay.$BOOT"
  echo "boot $BOOT ready in $1: sync $(tree_value resource-r0/syncstatus-node2), replay $(cat "$OUT/seen-replay.$BOOT")"
  mark "ready-$BOOT"
  sleep 600 # the host cuts the power
  fail "not killed"
}

load_mars interval_ms=1000
if [ "$NODE" = 1 ]; then
  mount_mars
  form_cluster
  create_primary r0 $SIZE
  fio --name=fill --filename=/dev/mars/r0 --rw=write --bs=1M --size=$((64 << 20)) --ioengine=libaio --iodepth=8 \
    --direct=1 --refill_buffers --output-format=terse >/dev/null || fail "fio fill"
  mark filled
  slices=0
  until [ -e "$OUT/mark.final.2" ]; do
    fio --name=w --filename=/dev/mars/r0 --rw=randwrite --bs=4k --size=$SIZE --ioengine=libaio --iodepth=4 \
      --direct=1 --time_based --runtime=5 --rate=512k --refill_buffers --output-format=terse >/dev/null \
      || fail "fio during the cuts"
    slices=$((slices + 1))
    [ $((slices % 4)) -ne 0 ] || marsadm log-rotate r0
  done
  sync
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node1/log)\" ]" 10
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  echo "primary: $slices slices written, log ends at $(tree_value resource-r0/actual-node1/log)"
  mark written
  wait_mark 2 900 compared
  unload_mars
  echo "secondary-crash node1 OK"
  exit 0
fi

if [ "$BOOT" = 1 ]; then
  mount_mars
  form_cluster
  wait_mark 1 300 filled
  join_secondary r0
  marsadm set-sync-rate r0 2M
  wait_for "[ \"\$(stored_done)\" -gt 0 ]" 120
  ready sync
fi

# A boot after a power cut: what was stored before it must still be there.
mount /dev/vdb /mars
prev=$((BOOT - 1))
done_now=$(stored_done)
replay_now=$(tree_value resource-r0/replay-node2 || true)
echo "boot $BOOT: stored sync $(tree_value resource-r0/syncstatus-node2 || true), replay $replay_now"
seen_sync=$(cat "$OUT/seen-sync.$prev")
seen_replay=$(cat "$OUT/seen-replay.$prev")
if [ "$(cat "$OUT/phase.$prev")" = sync ]; then
  [ "$done_now" -ge "$seen_sync" ] || fail "sync progress lost: $done_now stored, $seen_sync seen before the cut"
else
  pos_ge "$replay_now" "$seen_replay" || fail "replay position lost: $replay_now stored, $seen_replay seen before the cut"
fi
wait_peer_up 1 120

case $BOOT in
2)
  wait_for "[ \"\$(stored_done)\" -gt $done_now ]" 120
  ready sync
  ;;
3)
  marsadm set-sync-rate r0 unlimited
  marsadm wait-sync r0 --timeout 400 || fail "wait-sync: $(tree_value resource-r0/syncstatus-node2)"
  moved=$(sync_field r0 4)
  echo "sync complete; $moved bytes crossed in this boot, resumed at $done_now of $SIZE"
  [ "$moved" -le $((SIZE - done_now + (8 << 20))) ] || fail "the sync started over: $moved bytes after resuming at $done_now"
  wait_consistent r0 300
  ready replay
  ;;
4 | 5)
  wait_for "[ \"\$(tree_value resource-r0/replay-node2)\" != \"$replay_now\" ]" 120
  ready replay
  ;;
6)
  mark final
  wait_mark 1 300 written
  t0=$(date +%s)
  marsadm wait-replay r0 --timeout 400 || fail "wait-replay: $(tree_value resource-r0/replay-node2), $(tree_value resource-r0/actual-node2/consistency)"
  echo "caught up $(( $(date +%s) - t0 )) s after the primary's writes ended"
  [ "$(tree_value resource-r0/actual-node2/consistency)" = consistent ] || fail "not consistent after wait-replay"
  sha=$(device_sha /dev/vda $SIZE)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  marsadm view r0
  mark compared
  unload_mars
  echo "secondary-crash OK"
  ;;
esac
