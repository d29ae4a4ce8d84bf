# Guest side of scenarios/replicate.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((96 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1)
  create_primary r0 $SIZE
  wait_mark 2 240 joined
  mkfs.ext4 -q /dev/mars/r0
  mkdir -p /tmp/r0
  mount /dev/mars/r0 /tmp/r0
  fio --name=files --directory=/tmp/r0 --rw=randwrite --bs=4k --size=16M --nrfiles=4 --ioengine=psync \
    --fsync=64 --verify=crc32c --do_verify=1 --output-format=terse >/tmp/fio1 || fail "fio verify on ext4"
  marsadm log-rotate r0
  fio --name=seq --directory=/tmp/r0 --rw=write --bs=1M --size=24M --ioengine=psync --end_fsync=1 \
    --verify=crc32c --do_verify=1 --output-format=terse >/tmp/fio2 || fail "fio sequential verify on ext4"
  umount /tmp/r0
  sync
  # The final end of the log: once the logger's periodic flush made it durable, it stays.
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node1/log)\" ]" 10
  sleep 3
  end=$(tree_value resource-r0/actual-node1/log)
  echo "$end" >"$OUT/log-end"
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  echo "primary: log ends at $end, data $(cat "$OUT/sha.1")"
  mark written
  wait_mark 2 300 compared
  [ "$(tree_value resource-r0/replay-node2)" = "$end" ] || fail "node1 sees node2's replay at $(tree_value resource-r0/replay-node2), not $end"
  ;;
2)
  join_secondary r0
  # Replay waits until everything is fetched, and a copy is damaged before it is replayed.
  marsadm pause-replay r0
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node2/fetch-state)\" ]" 30
  [ ! -e /dev/mars/r0 ] || fail "/dev/mars/r0 exists on the secondary"
  wait_mark 1 300 written
  end=$(cat "$OUT/log-end")
  wait_for "[ \"\$(tree_value resource-r0/actual-node2/fetch)\" = \"$end\" ]" 240
  copy=$(ls /mars/resource-r0/log-*-node1 | head -1)
  printf '\377\377\377\377' | dd of="$copy" bs=1 seek=$((1 << 20)) conv=notrunc status=none
  echo "damaged 4 bytes at 1 MiB of the copy $(basename "$copy"); resuming replay"
  marsadm resume-replay r0
  t0=$(date +%s)
  if ! marsadm wait-replay r0 --timeout 240; then
    fail "wait-replay: replay $(tree_value resource-r0/replay-node2 || true), fetched $(tree_value resource-r0/actual-node2/fetch || true), $(tree_value resource-r0/actual-node2/fetch-state || true); primary at $end"
  fi
  echo "caught up $(( $(date +%s) - t0 )) s after replay resumed"
  dmesg | grep -E "copy of logfile [0-9]+ of node1 fails at [0-9]+ .*fetching it again" \
    || fail "no refetch of the damaged copy in dmesg"
  [ "$(tree_value resource-r0/replay-node2)" = "$end" ] || fail "wait-replay returned at $(tree_value resource-r0/replay-node2), primary at $end"
  wait_for "[ \"\$(tree_value resource-r0/actual-node2/fetch-state)\" = up-to-date ]" 10
  [ "$(tree_value resource-r0/actual-node2/fetch)" = "$end" ] || fail "fetched $(tree_value resource-r0/actual-node2/fetch), primary at $end"
  sha=$(device_sha /dev/vda $SIZE)
  echo "secondary: data $sha"
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  [ ! -e /dev/mars/r0 ] || fail "/dev/mars/r0 exists on the secondary"
  ls -l /mars/resource-r0/ | grep log- || true
  marsadm view r0
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "replicate OK"
