# Guest side of scenarios/two-resources.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
logs() { ls "/mars/resource-$1" | grep '^log-' | tr '\n' ' ' || true; }

mount_mars
load_mars interval_ms=200
marsadm create-cluster --ip 192.0.2.1
# Two data devices: loop devices over the two halves of the data disk.
modprobe loop
d0=$(losetup --find --show --direct-io=on --offset 0 --sizelimit $((150 << 20)) /dev/vda)
d1=$(losetup --find --show --direct-io=on --offset $((150 << 20)) --sizelimit $((150 << 20)) /dev/vda)
marsadm create-resource r0 "$d0" --size $((128 << 20))
marsadm create-resource r1 "$d1" --size $((128 << 20))
[ "$(marsadm view all --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["resource_states"]))')" = 2 ] \
  || fail "marsadm view all does not list two resources: $(marsadm view all --json)"

# Both at once, each verifying its own data.
verify() {
  fio --name="$1" --filename="/dev/mars/$1" --rw=randwrite --bs=4k --size=48M --iodepth=8 \
    --ioengine=libaio --direct=1 --verify=crc32c --verify_fatal=1 --do_verify=1 --randseed=$((SEED + ${1#r})) \
    --output="/tmp/fio-$1.txt"
}
verify r0 & p0=$!
verify r1 & p1=$!
wait $p0 || fail "fio verify on r0: $(cat /tmp/fio-r0.txt)"
wait $p1 || fail "fio verify on r1: $(cat /tmp/fio-r1.txt)"

# ext4 on both; r1 keeps writing while r0 is rotated, stopped, detached and brought back.
for r in r0 r1; do
  mkfs.ext4 -q "/dev/mars/$r"
  mkdir -p "/tmp/$r" && mount "/dev/mars/$r" "/tmp/$r"
  dd if=/dev/urandom of="/tmp/$r/file" bs=1M count=16 conv=fsync status=none
done
sha0=$(sha256sum </tmp/r0/file)
( for i in $(seq 1 40); do
    dd if=/dev/urandom of=/tmp/r1/busy bs=1M count=2 conv=fsync status=none || exit 1
  done ) & busy=$!
marsadm log-rotate r0
[ "$(logs r0)" = "log-000000001-node1 log-000000002-node1 " ] || fail "r0 logfiles after rotate: $(logs r0)"
[ "$(logs r1)" = "log-000000001-node1 " ] || fail "rotating r0 touched r1: $(logs r1)"
umount /tmp/r0
marsadm secondary r0
marsadm down r0
[ ! -b /dev/mars/r0 ] || fail "/dev/mars/r0 still exists after secondary"
[ -b /dev/mars/r1 ] || fail "/dev/mars/r1 went away with r0"
marsadm up r0
marsadm primary r0
mount /dev/mars/r0 /tmp/r0
[ "$(sha256sum </tmp/r0/file)" = "$sha0" ] || fail "r0's file changed across secondary/down/up/primary"
wait $busy || fail "writes to r1 failed while r0 was switched"
sha1=$(sha256sum </tmp/r1/file)
umount /tmp/r0 /tmp/r1
marsadm secondary r1
marsadm secondary r0
marsadm down r0
marsadm down r1
mount -o ro "$d1" /tmp/r1 || fail "r1's data device does not hold its ext4"
[ "$(sha256sum </tmp/r1/file)" = "$sha1" ] || fail "r1's data device does not hold its file"
umount /tmp/r1
losetup -d "$d0" "$d1"
unload_mars
echo "two resources OK"
