# Guest side of scenarios/full-sync.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((200 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1)
  create_primary r0 $SIZE
  t0=$(date +%s)
  fio --name=fill --filename=/dev/mars/r0 --rw=write --bs=1M --size=$SIZE --ioengine=libaio --iodepth=8 \
    --direct=1 --refill_buffers --output-format=terse >/dev/null || fail "fio fill"
  echo "filled $((SIZE >> 20)) MiB in $(( $(date +%s) - t0 )) s"
  mark filled
  wait_mark 2 240 joined
  # Writes all over the device while node2 syncs.
  fio --name=during --filename=/dev/mars/r0 --rw=randwrite --bs=4k --size=$SIZE --ioengine=libaio --iodepth=4 \
    --direct=1 --time_based --runtime=30 --refill_buffers --output-format=terse >/dev/null || fail "fio during sync"
  sync
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node1/log)\" ]" 10
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  echo "primary: log ends at $(tree_value resource-r0/actual-node1/log), data $(cat "$OUT/sha.1")"
  mark written
  wait_mark 2 600 compared
  ;;
2)
  wait_mark 1 400 filled
  join_secondary r0
  wait_for "[ \"\$(sync_field r0 1)\" -ge $((48 << 20)) ] 2>/dev/null" 240
  stored=$(tree_value resource-r0/syncstatus-node2)
  unload_mars
  # The copy goes on while the module unloads: its last published progress, read after.
  at=$(sync_field r0 1)
  echo "reloaded mars.ko mid-sync (stored: $stored, at $at of $SIZE)"
  resumed=${stored%%/*}
  [ "$resumed" -gt 0 ] || fail "no sync progress stored before the reload: $stored"
  load_mars interval_ms=1000
  t0=$(date +%s)
  marsadm wait-sync r0 --timeout 400 || fail "wait-sync: $(tree_value resource-r0/syncstatus-node2)"
  echo "sync complete $(( $(date +%s) - t0 )) s after the reload"
  moved=$(sync_field r0 4)
  echo "transferred after the reload: $moved bytes; resumed at $resumed of $SIZE"
  [ "$moved" -le $((SIZE - resumed + (8 << 20))) ] || fail "the sync started over: $moved bytes after resuming at $resumed"
  # Blocks copied after the last stored position compare equal the second time; the published
  # progress lags the copy by up to a strategy round (about 8 MiB here) and a window (8 MiB).
  [ "$moved" -ge $((SIZE - at - (24 << 20))) ] || fail "only $moved bytes crossed for a blank disk resumed at $resumed"
  wait_mark 1 600 written
  marsadm wait-replay r0 --timeout 300 || fail "wait-replay: $(tree_value resource-r0/actual-node2/consistency)"
  [ "$(tree_value resource-r0/actual-node2/consistency)" = consistent ] || fail "not consistent after wait-replay"
  sha=$(device_sha /dev/vda $SIZE)
  echo "secondary: data $sha"
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  marsadm view r0
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "full-sync OK"
