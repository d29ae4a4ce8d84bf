# Guest side of scenarios/ipv6.sh (two nodes, addresses fd78::K routed over the links).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

load_mars interval_ms=1000
mount_mars
form_cluster "fd78::$NODE" "fd78::1"
peer=$(( NODE == 1 ? 2 : 1 ))
[ "$(tree_value ips/ip-node$NODE)" = "fd78::$NODE" ] || fail "ips/ip-node$NODE is $(tree_value ips/ip-node$NODE)"
# The strategy thread opens the listeners on its next round after joining.
wait_for "grep -q '^listen \[fd78:0:0:0:0:0:0:$NODE\]:7777' /proc/mars/status" 10
wait_peer_up "$peer"
peer_line "node$peer" | grep -q "\[fd78:0:0:0:0:0:0:$peer\]:7777" || fail "peer not reached over IPv6: $(peer_line node$peer)"
ss -tn | grep -q "\[fd78::$NODE\]" || fail "no IPv6 connection in ss: $(ss -tn)"
barrier connected
put_key "defaults/v6-$NODE" "node$NODE"
wait_for "[ \"\$(tree_value defaults/v6-$peer)\" = node$peer ]" 10
marsadm view
marsadm view | grep -q "fd78::$peer .*tree up" || fail "view does not show node$peer up at fd78::$peer"
barrier done
unload_mars
echo "ipv6 OK"
