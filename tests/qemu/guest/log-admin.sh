# Guest side of scenarios/log-admin.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
logs() { ls /mars/resource-r0 | grep '^log-' | tr '\n' ' '; }

mount_mars
load_mars interval_ms=200
marsadm create-cluster --ip 192.0.2.1
marsadm create-resource r0 /dev/vda --size $((64 << 20))
dd if=/dev/urandom of=/tmp/pat bs=1M count=4 status=none
dd if=/tmp/pat of=/dev/mars/r0 bs=1M oflag=direct status=none
marsadm secondary r0
marsadm primary r0
[ "$(logs)" = "log-000000001-node1 log-000000002-node1 " ] || fail "logfiles after a second primary start: $(logs)"
marsadm log-rotate r0
[ "$(logs)" = "log-000000001-node1 log-000000002-node1 log-000000003-node1 " ] || fail "logfiles after log-rotate: $(logs)"
dd if=/tmp/pat of=/dev/mars/r0 bs=1M seek=8 oflag=direct status=none
# 4 MiB of data plus record headers and pads (how many depends on how the block layer splits the
# bios); the logfile itself is preallocated, so the position comes from the status key.
log_pos() { tree_value resource-r0/actual-node1/log; }
wait_for '[ "$(log_pos | cut -d, -f1)" = log-000000003-node1 ] && [ "$(log_pos | cut -d, -f2)" -gt $((4 << 20)) ]' 5
pos3=$(log_pos | cut -d, -f2)
[ "$pos3" -lt $(((4 << 20) + 64 * 1024)) ] || fail "log position after 4 MiB in the new logfile: $pos3"
marsadm log-delete r0
[ "$(logs)" = "log-000000003-node1 " ] || fail "logfiles after log-delete: $(logs)"
cmp -n $((4 << 20)) /tmp/pat /dev/mars/r0 || fail "data changed by log-delete"
cmp -n $((4 << 20)) /tmp/pat <(dd if=/dev/mars/r0 bs=1M skip=8 count=4 iflag=direct status=none) || fail "data after rotation"
marsadm secondary r0
# Secondary: every logfile is on the data disk, so all go; numbering still goes on upwards.
marsadm log-delete r0
[ "$(logs)" = "" ] || fail "logfiles after log-delete on a secondary: $(logs)"
marsadm primary r0
[ "$(logs)" = "log-000000004-node1 " ] || fail "logfile numbers restarted after every logfile was deleted: $(logs)"
cmp -n $((4 << 20)) /tmp/pat /dev/mars/r0 || fail "data changed by deleting every logfile"
marsadm secondary r0
marsadm down r0
marsadm delete-resource r0
[ ! -e /mars/resource-r0 ] || fail "/mars/resource-r0 still exists: $(ls -R /mars/resource-r0)"
marsadm create-resource r0 /dev/vda --size $((64 << 20))
[ -b /dev/mars/r0 ] || fail "re-created r0 has no device"
cmp -n $((4 << 20)) /tmp/pat /dev/mars/r0 || fail "data disk content lost across delete and re-create"
marsadm secondary r0
marsadm down r0
unload_mars

# Rotation at a size: with log_rotate_mb=4, 12 MiB of writes fill at least two more logfiles.
load_mars interval_ms=200 log_rotate_mb=4
marsadm up r0
marsadm primary r0
for i in 0 1 2; do
  dd if=/tmp/pat of=/dev/mars/r0 bs=1M seek=$((16 + 4 * i)) oflag=direct status=none
  sleep 0.5
done
wait_for '[ "$(logs | wc -w)" -ge 4 ]' 5
cmp -n $((4 << 20)) /tmp/pat <(dd if=/dev/mars/r0 bs=1M skip=24 count=4 iflag=direct status=none) || fail "data across size rotations"
marsadm secondary r0
marsadm down r0
unload_mars
echo "log admin OK"
