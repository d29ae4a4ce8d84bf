# Guest side of scenarios/emergency.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
logs() { ls /mars/resource-r0 | grep '^log-' | tr '\n' ' ' || true; }

mount_mars # 64 MiB: room for about three 16 MiB preallocation steps of the log
load_mars interval_ms=200
marsadm create-cluster --ip 192.0.2.1
marsadm create-resource r0 /dev/vda --size $((192 << 20))
dd if=/dev/urandom of=/tmp/pat bs=1M count=160 status=none
# 160 MiB through /dev/mars/r0: far more than /mars holds. Not one write may fail.
dd if=/tmp/pat of=/dev/mars/r0 bs=1M oflag=direct conv=fsync status=none || fail "writes failed while /mars ran full"
expect_dmesg "mars: resource r0: cannot write its log \(error -28\): EMERGENCY MODE"
wait_for '[ "$(tree_value resource-r0/actual-node1/emergency)" = 1 ]' 5
marsadm view r0 | grep -q "emergency *YES: /mars ran full" || fail "marsadm view does not show emergency mode: $(marsadm view r0)"
[ "$(logs)" = "" ] || fail "stale logfiles kept in emergency mode: $(logs)"
out=$(marsadm log-rotate r0 2>&1) && fail "log-rotate accepted in emergency mode: $out"
echo "$out" | grep -q "r0 is in emergency mode on node1" || fail "log-rotate in emergency mode: $out"
cmp -n $((160 << 20)) /tmp/pat /dev/mars/r0 || fail "/dev/mars/r0 differs from what was written"
cmp -n $((160 << 20)) /tmp/pat /dev/vda || fail "the data disk differs from what was written"
# Overwrite the start (logged before /mars ran full): a replay of the old log would undo this.
dd if=/dev/urandom of=/tmp/head bs=1M count=8 status=none
dd if=/tmp/head of=/dev/mars/r0 bs=1M oflag=direct conv=fsync status=none || fail "write in emergency mode failed"
marsadm secondary r0
marsadm down r0
marsadm up r0
marsadm primary r0
cmp /tmp/head <(head -c $((8 << 20)) /dev/mars/r0) || fail "overwritten data lost across down/up"
cmp -n $((152 << 20)) <(tail -c +$(((8 << 20) + 1)) /tmp/pat) <(dd if=/dev/mars/r0 bs=1M skip=8 iflag=direct status=none) \
  || fail "data after the overwritten part changed across down/up"
# The logfiles are gone, so there is room again: logging resumes in a new logfile.
[ "$(logs)" = "log-000000002-node1 " ] || fail "logfiles after primary again: $(logs)"
wait_for '[ "$(tree_value resource-r0/actual-node1/emergency)" = 0 ]' 5
dd if=/tmp/pat of=/dev/mars/r0 bs=1M count=4 seek=100 oflag=direct status=none
wait_for '[ "$(tree_value resource-r0/actual-node1/log | cut -d, -f2)" -gt $((4 << 20)) ]' 5
cmp -n $((4 << 20)) /tmp/pat <(dd if=/dev/mars/r0 bs=1M skip=100 count=4 iflag=direct status=none) || fail "data after emergency mode"
marsadm secondary r0
marsadm down r0
unload_mars
echo "emergency OK"
