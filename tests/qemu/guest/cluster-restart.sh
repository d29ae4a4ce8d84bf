# Guest side of scenarios/cluster-restart.sh (two nodes; node2 boots twice).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

load_mars interval_ms=1000
if [ "$NODE" = 2 ] && [ -e "$OUT/killed" ]; then
  # After the power cut: the boot does what any boot does, nothing more.
  mount /dev/vdb /mars
  wait_peer_up 1 60
  put_key defaults/after-restart "node2-is-back"
  mark back
  wait_mark 1 120 done
  unload_mars
  echo "node2 back OK"
  exit 0
fi
mount_mars
form_cluster
peer=$(( NODE == 1 ? 2 : 1 ))
wait_peer_up "$peer"
if [ "$NODE" = 2 ]; then
  mark up
  sleep 600 # the host cuts the power
  fail "not killed"
fi
# node1: node2 is down: its connection fails, its heartbeat ages.
wait_mark 2 300 up
wait_for "[ -e '$OUT/killed' ]" 300
wait_for "peer_line node2 | grep -vq 'tree=up'" 30
wait_for "[ \$(marsadm --json view | jq '.members[] | select(.name == \"node2\") | .heartbeat_age_s') -ge 10 ]" 30
marsadm view
marsadm view | grep node2 | grep -q "last contact" || fail "view shows no last contact for node2"
mark seen-down
# node2 boots again and is back without an admin step.
wait_mark 2 300 back
wait_peer_up 2 60
wait_for "[ \"\$(tree_value defaults/after-restart)\" = node2-is-back ]" 10
wait_for "[ \$(marsadm --json view | jq '.members[] | select(.name == \"node2\") | .heartbeat_age_s') -le 3 ]" 10
marsadm view
mark done
unload_mars
echo "cluster restart OK"
