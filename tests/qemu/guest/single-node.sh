# Guest side of scenarios/single-node.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

mount_mars
load_mars interval_ms=200
marsadm create-cluster --ip 192.0.2.1
marsadm create-resource r0 /dev/vda --size $((128 << 20))
[ -b /dev/mars/r0 ] || fail "/dev/mars/r0 does not exist after create-resource"
[ "$(blockdev --getsize64 /dev/mars/r0)" -eq $((128 << 20)) ] || fail "wrong size: $(blockdev --getsize64 /dev/mars/r0)"
ls -l /mars/resource-r0 /mars/resource-r0/actual-node1

# Raw device: random 4k writes with verification, then sequential 1M.
fio --name=raw4k --filename=/dev/mars/r0 --rw=randwrite --bs=4k --size=32M --direct=1 \
    --ioengine=libaio --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 --randseed=$SEED \
    --output-format=terse >/tmp/fio1 || fail "fio 4k verify on /dev/mars/r0"
fio --name=raw1m --filename=/dev/mars/r0 --offset=64M --rw=write --bs=1M --size=32M --direct=1 \
    --ioengine=libaio --iodepth=8 --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --output-format=terse >/tmp/fio2 || fail "fio 1M verify on /dev/mars/r0"

# A filesystem on it.
mkfs.ext4 -q /dev/mars/r0
mkdir -p /tmp/r0 && mount /dev/mars/r0 /tmp/r0
fio --name=fs --directory=/tmp/r0 --rw=randwrite --bs=4k --size=16M --ioengine=psync --fsync=8 --randseed=$SEED \
    --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=terse >/tmp/fio3 || fail "fio verify on ext4"
expect_fail marsadm secondary r0 --timeout 3
echo "$LAST_OUTPUT" | grep -q "in use" || fail "secondary while mounted was not refused as in use"
[ -b /dev/mars/r0 ] || fail "/dev/mars/r0 vanished while mounted"
umount /tmp/r0

# Everything acknowledged is on the data disk once the write-back lag is zero.
sync
wait_for "[ \"\$(tree_value resource-r0/actual-node1/writeback-lag)\" = 0 ]" 10
cmp -n $((128 << 20)) /dev/mars/r0 /dev/vda || fail "data disk differs from /dev/mars/r0"
log=$(ls /mars/resource-r0/ | grep '^log-'); echo "logfiles: $log"
[ "$(stat -c %s /mars/resource-r0/log-000000001-node1)" -gt $((64 << 20)) ] || fail "log is too small"

marsadm secondary r0
[ ! -e /dev/mars/r0 ] || fail "/dev/mars/r0 still exists after secondary"
marsadm down r0
[ "$(tree_value resource-r0/actual-node1/is-attached)" = 0 ] || fail "still attached after down"
# The data device is free again.
dd if=/dev/vda of=/dev/null bs=1M count=1 iflag=direct
unload_mars
echo "single node OK"
