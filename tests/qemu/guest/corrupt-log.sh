# Guest side of scenarios/corrupt-log.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

mount_mars
load_mars interval_ms=200
marsadm create-cluster --ip 192.0.2.1
marsadm create-resource r0 /dev/vda --size $((64 << 20))
# Ten 4 KiB writes of distinct bytes to blocks 0..9, each its own record (O_DIRECT, one by one).
for i in $(seq 0 9); do
  printf "%04096d" 0 | tr 0 "$(printf "\\x$(printf %x $((65 + i)))")" >/tmp/blk
  dd if=/tmp/blk of=/dev/mars/r0 bs=4096 seek="$i" count=1 oflag=direct status=none
done
marsadm secondary r0
marsadm down r0
log=/mars/resource-r0/log-000000001-node1
# Each write is one batch: a 4160-byte record and a pad up to the next 512-byte boundary.
batch=4608
pos=$(tree_value resource-r0/replay-node1)
[ "$pos" = "log-000000001-node1,$((10 * batch))" ] || fail "replay position after 10 writes: $pos"
# Start from a clean data disk and forget the replay position, so that the replay of the whole
# logfile alone decides what is on the disk.
dd if=/dev/zero of=/dev/vda bs=1M count=1 oflag=direct status=none
rm /mars/resource-r0/replay-node1
# Flip one payload byte of write 7 (0-based index 6).
off=$((6 * batch + 64 + 100))
printf '\x00' | dd of=$log bs=1 seek=$off count=1 conv=notrunc status=none
sync
marsadm up r0 --timeout 60
expect_dmesg "mars: resource r0: logfile log-000000001-node1 is damaged at offset $((6 * batch)): record payload checksum mismatch"
tree_value resource-r0/actual-node1/error | grep -q "log-000000001-node1 is damaged" || fail "error key: $(tree_value resource-r0/actual-node1/error)"
marsadm view r0 | grep -q "damaged" || fail "marsadm view does not show the damage"
for i in $(seq 0 5); do
  want=$(printf "\\x$(printf %x $((65 + i)))")
  got=$(dd if=/dev/vda bs=4096 skip="$i" count=1 iflag=direct status=none | head -c1)
  [ "$got" = "$want" ] || fail "block $i (before the damage) is not on the data disk"
done
for i in 6 7 8 9; do
  [ "$(dd if=/dev/vda bs=4096 skip="$i" count=1 iflag=direct status=none | tr -d '\0' | wc -c)" -eq 0 ] \
    || fail "block $i (damaged record or after it) was applied"
done
# The data device lacks the records from the damage on: it must not become a primary's device.
expect_fail marsadm primary r0 --timeout 10
echo "$LAST_OUTPUT" | grep -q "log-000000001-node1 is damaged" || fail "primary with a damaged log: $LAST_OUTPUT"
[ ! -b /dev/mars/r0 ] || fail "became primary with a damaged log"
# Accepting the loss: drop the logfiles; the resource then comes up clean and can be primary.
marsadm secondary r0
marsadm log-delete r0
marsadm down r0
marsadm up r0
marsadm primary r0
[ "$(head -c1 /dev/mars/r0)" = A ] || fail "block 0 lost after dropping the damaged log"
[ -z "$(tree_value resource-r0/actual-node1/error)" ] || fail "error key after recovery: $(tree_value resource-r0/actual-node1/error)"
marsadm secondary r0
marsadm down r0
unload_mars
echo "corrupt log OK"
