# Guest side of scenarios/peer-auth.sh: node1 and node2 form the cluster, node3 is the outsider.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/peer_tool.py"

load_mars interval_ms=1000
mount_mars
case $NODE in
1 | 2)
  form_cluster
  peer=$(( NODE == 1 ? 2 : 1 ))
  wait_peer_up "$peer"
  # The right secret passes on every channel.
  marsadm check-peer "node$peer"
  up_before=$(peer_line "node$peer" | sed -n 's/.* up_ms=\([0-9]*\).*/\1/p'); t_before=$(date +%s%3N)
  mark members-up
  wait_mark 3 300 attacked
  # The members were not disturbed: the connection never failed, and is still up.
  peer_line "node$peer" | grep -q "tree=up" || fail "member connection down: $(peer_line node$peer)"
  up_after=$(peer_line "node$peer" | sed -n 's/.* up_ms=\([0-9]*\).*/\1/p'); t_after=$(date +%s%3N)
  # Up all along: the connection aged as much as the clock (less a round of status delay).
  [ $(( up_after - up_before )) -ge $(( t_after - t_before - 2500 )) ] ||
    fail "member connection was re-made meanwhile (up $up_before ms, then $up_after ms, $(( t_after - t_before )) ms later)"
  if [ "$NODE" = 1 ]; then
    # Each refusal was logged (rate-limited: at least the first, and the count of the rest).
    expect_dmesg "tree channel: refused peer 10\.78\.0\.3:[0-9]+: .*(different cluster|cluster id)"
    expect_dmesg "(replication|sync) channel: refused peer 10\.78\.0\.3"
    dmesg | grep -c "refused peer" | awk '{ if ($1 > 40) exit 1 }' || fail "refusals are not rate-limited"
    # The outsider got nothing into the tree.
    [ -z "$(tree_value ips/ip-node3 2>/dev/null || true)" ] || fail "the outsider is in node1's tree"
    [ -z "$(tree_value defaults/outsider 2>/dev/null || true)" ] || fail "an outsider's key is in node1's tree"
  fi
  barrier checked
  ;;
3)
  wait_mark 1 300 members-up
  wait_mark 2 300 members-up
  # A host of another cluster (its own secret): its module tries node1 and is refused.
  marsadm create-cluster --ip 10.78.0.3
  put_key defaults/outsider "should-not-spread"
  put_key ips/ip-node1 10.78.0.1
  wait_for "peer_line node1 | grep -q 'different cluster'" 30
  peer_line node1
  # marsadm check-peer with that secret: refused on every channel.
  expect_fail marsadm check-peer node1
  for ch in tree replication sync; do
    echo "$LAST_OUTPUT" | grep "^$ch " | grep -q "wrong cluster secret" || fail "$ch channel not refused: $LAST_OUTPUT"
  done
  # A wrong copy of the secret, from a client that is not MARS's own code, on every channel.
  head -c 32 /dev/urandom >/tmp/wrong
  for port in 7777 7778 7779; do
    if out=$($tool handshake 10.78.0.2 $port /tmp/wrong node3); then fail "port $port took a wrong secret: $out"; fi
    echo "port $port: $out"
    echo "$out" | grep -q "refused" || fail "port $port: $out"
  done
  # The member's name with a wrong secret changes nothing either.
  if $tool handshake 10.78.0.1 7777 /tmp/wrong node2; then fail "node1 took node2's name with a wrong secret"; fi
  sleep 3
  mark attacked
  barrier checked
  ;;
esac
unload_mars
echo "peer auth OK"
