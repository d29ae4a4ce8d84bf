# Guest side of scenarios/handover.sh (three nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((64 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster

# Writes $2 files of 1 MiB of random data named $1-K into the filesystem at /tmp/r0 and appends
# their SHA-256 to $OUT/files.
write_files() {
  local k
  for k in $(seq 1 "$2"); do
    dd if=/dev/urandom of="/tmp/r0/$1-$k" bs=1M count=1 status=none
  done
  sync
  (cd /tmp/r0 && sha256sum "$1"-*) >>"$OUT/files"
}

# Mounts /dev/mars/r0 and checks every file written so far.
mount_and_check() {
  mkdir -p /tmp/r0
  mount /dev/mars/r0 /tmp/r0
  (cd /tmp/r0 && sha256sum -c --quiet "$OUT/files") || fail "files differ on node$NODE's /dev/mars/r0"
}

# The number of the newest logfile of node $1 here.
newest_log() { ls /mars/resource-r0/ | sed -n "s/^log-\([0-9]*\)-node$1\$/\1/p" | sort -n | tail -1; }

# Waits for replay of the current primary's log and compares the data device with $OUT/$1.
caught_up() {
  marsadm wait-replay r0 --timeout 300 || fail "wait-replay: $(tree_value resource-r0/actual-node$NODE/fetch-state || true)"
  [ "$(device_sha /dev/vda $SIZE)" = "$(cat "$OUT/$1")" ] || fail "node$NODE's data device differs from $1"
  echo "node$NODE equals $1 at $(tree_value resource-r0/replay-node$NODE)"
}

# Takes over r0 here (planned), timing it, and checks the new logfile's number.
take_over() {
  local old=$1 last t0
  t0=$(date +%s)
  marsadm primary r0 --timeout 300 || fail "primary: $(tree_value resource-r0/actual-node$NODE/switchover || true)"
  echo "node$NODE primary $(( $(date +%s) - t0 )) s after asking"
  last=$(newest_log "$old")
  [ "$(tree_value resource-r0/actual-node$NODE/log | cut -d, -f1)" = "log-$(printf %09d $((10#$last + 1)))-node$NODE" ] \
    || fail "node$NODE logs into $(tree_value resource-r0/actual-node$NODE/log), not after node$old's logfile $last"
  [ "$(tree_value resource-r0/actual-node$old/is-primary)" = 0 ] || fail "node$old still primary"
}

case $NODE in
1)
  create_primary r0 $SIZE
  for k in 2 3; do wait_mark $k 300 synced; done
  mkfs.ext4 -q /dev/mars/r0
  mkdir -p /tmp/r0
  mount /dev/mars/r0 /tmp/r0
  : >"$OUT/files"
  write_files one 8
  marsadm log-rotate r0
  write_files two 4
  mark mounted
  wait_mark 2 120 refused
  umount /tmp/r0
  mark unmounted
  wait_mark 2 400 written
  [ ! -e /dev/mars/r0 ] || fail "/dev/mars/r0 is still here after the handover"
  marsadm view r0
  caught_up sha.2
  # And back.
  take_over 2
  mount_and_check
  write_files four 4
  umount /tmp/r0
  sleep 2
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.3"
  mark back
  ;;
2)
  join_secondary r0
  wait_consistent r0 300
  mark synced
  wait_mark 1 300 mounted
  expect_fail marsadm primary r0
  grep -q "in use" <<<"$LAST_OUTPUT" || fail "refusal does not say node1's device is in use"
  [ "$(tree_value resource-r0/primary)" = node1 ] || fail "a refused handover changed the primary"
  mark refused
  wait_mark 1 60 unmounted
  take_over 1
  mount_and_check
  write_files three 4
  umount /tmp/r0
  sleep 2
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.2"
  mark written
  wait_mark 1 400 back
  caught_up sha.3
  ;;
3)
  join_secondary r0
  wait_consistent r0 300
  marsadm pause-fetch r0
  mark synced
  wait_mark 2 600 written
  marsadm resume-fetch r0
  caught_up sha.2
  # node1's logfiles came from node2, which served its copies of them.
  dmesg | grep -q "secondary of node2" || fail "node3 never fetched from node2"
  wait_mark 1 400 back
  caught_up sha.3
  ls /mars/resource-r0/
  marsadm view r0
  ;;
esac
barrier done 300
unload_mars
echo "handover OK"
