# Guest side of scenarios/fast-sync.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((64 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster

# Syncs node2 (after `marsadm $*` unless empty), then checks that its device equals node1's and
# prints the bytes that crossed the link for it (marsadm's own output goes to stderr).
synced() {
  local before after sha
  before=$(sync_field r0 4 2>/dev/null || echo 0)
  [ -z "$*" ] || marsadm "$@" >&2
  marsadm wait-sync r0 --timeout 300 >&2 || fail "wait-sync: $(tree_value resource-r0/syncstatus-node2)"
  marsadm wait-replay r0 --timeout 300 >&2 || fail "wait-replay: $(tree_value resource-r0/actual-node2/consistency)"
  # The copy brick publishes its counter with each strategy round.
  sleep 2
  after=$(sync_field r0 4)
  sha=$(device_sha /dev/vda $SIZE)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "after ${*:-join}: the secondary's data device differs"
  echo $((after - before))
}

case $NODE in
1)
  create_primary r0 $SIZE
  dd if=/dev/urandom of=/dev/mars/r0 bs=1M seek=40 count=2 oflag=direct status=none
  sync
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  mark written
  wait_mark 2 800 compared
  ;;
2)
  wait_mark 1 240 written
  t0=$(date +%s)
  join_secondary r0
  moved=$(synced)
  echo "fast sync at join: $moved bytes crossed of $SIZE in $(( $(date +%s) - t0 )) s"
  [ "$moved" -lt $((SIZE / 20)) ] || fail "fast sync moved $moved bytes, not less than 5% of $SIZE"
  t0=$(date +%s)
  moved=$(synced invalidate r0)
  echo "invalidate (fast): $moved bytes crossed in $(( $(date +%s) - t0 )) s"
  [ "$moved" -lt $((SIZE / 20)) ] || fail "fast sync of equal disks moved $moved bytes"
  t0=$(date +%s)
  moved=$(synced invalidate r0 --full)
  echo "invalidate --full: $moved bytes crossed in $(( $(date +%s) - t0 )) s"
  [ "$moved" -ge "$SIZE" ] || fail "a full sync moved only $moved of $SIZE bytes"
  marsadm view r0
  marsadm view r0 --json | grep -q '"consistency": *"consistent"' || fail "view --json lacks the consistency"
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "fast-sync OK"
