# Guest side of scenarios/cluster-tree.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

# With nothing mounted on /mars the module runs and is in no cluster; marsadm refuses to write.
load_mars interval_ms=200
wait_for "grep -qx 'cluster not-member' /proc/mars/status"
marsadm view | grep -q "in no cluster" || fail "marsadm view does not explain the membership"
expect_fail marsadm create-cluster --ip 192.0.2.1
echo "$LAST_OUTPUT" | grep -q "is not a mounted filesystem" || fail "unmounted /mars not reported"

mount_mars
expect_fail setpriv --reuid=65534 --clear-groups marsadm create-cluster --ip 192.0.2.1
echo "$LAST_OUTPUT" | grep -q "must run as root" || fail "non-root user not refused"
expect_fail marsadm create-cluster --ip 192.0.2.300
expect_fail marsadm --host Bad_Name create-cluster --ip 192.0.2.1
echo "$LAST_OUTPUT" | grep -q "cannot be used by MARS" || fail "bad host name not refused"

marsadm create-cluster --ip 192.0.2.1
[ "$(tree_value ips/ip-node1)" = "192.0.2.1" ] || fail "ips/ip-node1 is $(tree_value ips/ip-node1)"
tree_value uuid | grep -q '^node1-[0-9]*$' || fail "uuid is $(tree_value uuid)"
expect_fail marsadm create-cluster --ip 192.0.2.1
echo "$LAST_OUTPUT" | grep -q "exists already" || fail "second create-cluster not refused"

# The kernel notices within a round and starts its heartbeat; the stamp keeps moving.
wait_for "grep -qx 'cluster member' /proc/mars/status" 5
wait_for "[ \"\$(tree_value actual-node1/alive)\" = 1 ]" 5
first=$(readlink /mars/actual-node1/alive); sleep 1; second=$(readlink /mars/actual-node1/alive)
[ "$first" != "$second" ] || fail "heartbeat stamp does not move: $first"
# The kernel's stamps are later than marsadm's (it observed them).
k_stamp=${second#*|}; u_stamp=$(readlink /mars/ips/ip-node1); u_stamp=${u_stamp#*|}
[ "${k_stamp%%@*}" \> "${u_stamp%%@*}" ] || fail "kernel stamp $k_stamp not after marsadm's $u_stamp"
grep -qx "strategy_error 0" /proc/mars/status || fail "strategy reports an error: $(cat /proc/mars/status)"
ls -la /mars /mars/actual-node1
ls -A /mars/actual-node1 /mars/ips | grep -q '^\.' && fail "temporary entries left in /mars"

# A clean unload says so in the tree.
unload_mars
[ "$(tree_value actual-node1/alive)" = 0 ] || fail "alive is not 0 after rmmod"
echo "cluster tree OK"
