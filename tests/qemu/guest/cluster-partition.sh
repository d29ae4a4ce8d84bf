# Guest side of scenarios/cluster-partition.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

load_mars interval_ms=1000
mount_mars
form_cluster
peer=$(( NODE == 1 ? 2 : 1 ))
wait_peer_up "$peer"
barrier connected

# The cut: both ends of the link go down for 30 s.
link_down "$peer"
cut_at=$(date +%s)
put_key "defaults/during-cut-$NODE" "written-by-node$NODE"
# Nothing arrives any more: the client gives up on the silent peer (12 s) and shows it down,
# with its last contact; this host goes on (its rounds succeed, its heartbeat moves).
wait_for "peer_line node$peer | grep -vq 'tree=up'" 25
beat=$(readlink /mars/actual-node$NODE/alive)
sleep 2
[ "$(readlink /mars/actual-node$NODE/alive)" != "$beat" ] || fail "the heartbeat stopped during the cut"
grep -qx "strategy_error 0" /proc/mars/status || fail "strategy rounds fail during the cut"
wait_for "marsadm --json view | jq -e --arg p node$peer \
  '.members[] | select(.name == \$p) | .tree != \"up\" and .last_contact_ms_ago >= 10000'" 25
marsadm view
marsadm view | grep "node$peer" | grep -q "last contact" || fail "text view lacks the last contact"
[ "$(tree_value defaults/during-cut-$peer 2>/dev/null || true)" = "" ] || fail "a key crossed the cut link"
sleep $(( 30 - ($(date +%s) - cut_at) )) 2>/dev/null || true

# The heal: no admin step, the client reconnects (backoff) and both trees converge.
link_up "$peer"
healed_at=$(date +%s)
wait_peer_up "$peer" 60
wait_for "[ \"\$(tree_value defaults/during-cut-$peer)\" = written-by-node$peer ]" 10
echo "reconnected and converged $(( $(date +%s) - healed_at )) s after the heal"
barrier converged
[ "$(tree_value defaults/during-cut-$NODE)" = "written-by-node$NODE" ] || fail "own key lost"
unload_mars
echo "cluster partition OK"
