# Guest side of scenarios/cluster-join.sh (three nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

ROUND_S=1
load_mars interval_ms=$((ROUND_S * 1000))
mount_mars
me=10.78.0.$NODE

case $NODE in
1)
  marsadm create-cluster --ip "$me"
  [ "$(stat -c %a /mars/.secret)" = 600 ] || fail "/mars/.secret is not mode 0600"
  [ "$(stat -c %s /mars/.secret)" = 32 ] || fail "/mars/.secret is not 32 bytes"
  cp /mars/.secret "$OUT/secret"
  wait_for "grep -q '^listen 10.78.0.1:7777' /proc/mars/status" 10
  mark created
  ;;
2)
  wait_mark 1 120 created
  head -c 32 /dev/urandom >/tmp/wrong-secret
  expect_fail marsadm join-cluster 10.78.0.1 --ip "$me" --secret-file /tmp/wrong-secret --timeout 5
  echo "$LAST_OUTPUT" | grep -q "wrong cluster secret" || fail "a wrong secret is not reported as such"
  head -c 7 /dev/urandom >/tmp/short-secret
  expect_fail marsadm join-cluster 10.78.0.1 --ip "$me" --secret-file /tmp/short-secret
  echo "$LAST_OUTPUT" | grep -q "holds 7 bytes" || fail "a short secret is not refused"
  expect_fail marsadm join-cluster 10.78.0.1 --ip "$me"
  echo "$LAST_OUTPUT" | grep -q "no cluster secret" || fail "a missing secret is not refused"
  # An address that is routed but where nobody answers: a clear timeout.
  ip route add 10.78.0.99/32 via 10.77.12.1
  t0=$(date +%s)
  expect_fail marsadm join-cluster 10.78.0.99 --ip "$me" --secret-file "$OUT/secret" --timeout 3
  echo "$LAST_OUTPUT" | grep -q "no answer within 3 s" || fail "an unreachable peer is not reported"
  [ $(( $(date +%s) - t0 )) -le 10 ] || fail "the unreachable peer took more than 10 s"
  # A host of node1's name is taken.
  expect_fail marsadm --host node1 join-cluster 10.78.0.1 --ip "$me" --secret-file "$OUT/secret"
  echo "$LAST_OUTPUT" | grep -qE "loop or an impostor|host name node1 is taken" || fail "a taken name is not refused"
  # None of the refusals left anything in /mars.
  [ -z "$(ls -A /mars | grep -v lost+found)" ] || fail "refused joins left $(ls -A /mars) in /mars"
  # node1 logged the wrong secret, and not more than once per 5 s.
  marsadm join-cluster 10.78.0.1 --ip "$me" --secret-file "$OUT/secret"
  [ "$(stat -c %a /mars/.secret)" = 600 ] || fail "/mars/.secret is not mode 0600 after join"
  expect_fail marsadm join-cluster 10.78.0.1 --ip "$me" --secret-file "$OUT/secret"
  echo "$LAST_OUTPUT" | grep -q "already holds a cluster" || fail "a second join is not refused"
  mark joined
  ;;
3)
  wait_mark 2 240 joined
  # By host name, through node2 (not the creator).
  expect_fail marsadm --host node2 join-cluster node2 --ip "$me" --secret-file "$OUT/secret"
  echo "$LAST_OUTPUT" | grep -qE "loop or an impostor|host name node2 is taken" || fail "node2's name not refused"
  marsadm join-cluster node2 --ip "$me" --secret-file "$OUT/secret"
  mark joined
  ;;
esac

barrier all-joined 300
# Every node lists three members, and every peer connected.
wait_for "[ \$(marsadm --json view | jq '.members | length') = 3 ]" 20
for k in 1 2 3; do
  [ "$k" = "$NODE" ] && continue
  wait_for "peer_line node$k | grep -q 'tree=up'" 30
done
marsadm view
marsadm --json view | jq -e '[.members[] | select(.this_host == false) | .tree] | all(. == "up")' >/dev/null ||
  fail "view does not show every peer connected"
barrier connected 120

# Each node in turn writes a key; every other node must have it within two rounds (plus one
# second of slack for the emulation).
for writer in 1 2 3; do
  if [ "$writer" = "$NODE" ]; then
    put_key "defaults/probe-$writer" "from-node$writer"
    date +%s.%N >"$OUT/probe-written.$writer"
  else
    wait_for "[ -e '$OUT/probe-written.$writer' ]" 60
    wait_for "[ \"\$(tree_value defaults/probe-$writer)\" = from-node$writer ]" $((2 * ROUND_S + 1))
    took=$(echo "$(date +%s.%N) - $(cat "$OUT/probe-written.$writer")" | bc)
    echo "key of node$writer arrived after $took s"
  fi
  barrier "probe-$writer" 60
done

# The handshake refusal of node2's wrong secret was logged on node1.
if [ "$NODE" = 1 ]; then
  expect_dmesg "tree channel: refused peer 10\.78\.0\.2:[0-9]+: .*(different cluster|cluster id)"
fi
grep -q "secret" /proc/mars/status && fail "the secret shows in /proc/mars/status"
dmesg | grep -q "$(xxd -p -c 64 /mars/.secret)" && fail "the secret is in dmesg"

# node3 leaves: refused while it has a data device for a resource, then done; the others learn
# of it while its server still answers (the leaving grace) and drop it.
if [ "$NODE" = 3 ]; then
  put_key resource-r9/data-node3 /dev/vda
  expect_fail marsadm leave-cluster
  echo "$LAST_OUTPUT" | grep -q "still belongs to resource(s) r9" || fail "leave with a data device not refused"
  ln -sfn "|$(date +%s.%N)@0000000000000003,deleted" /mars/resource-r9/data-node3
  marsadm leave-cluster
  grep -qx "cluster leaving" /proc/mars/status || fail "not leaving: $(grep ^cluster /proc/mars/status)"
  expect_fail marsadm leave-cluster
  echo "$LAST_OUTPUT" | grep -q "not a member" || fail "a second leave not refused"
else
  wait_for "[ \$(marsadm --json view | jq '.members | length') = 2 ]" 20
  wait_for "! peer_line node3" 10
fi
barrier left 120

barrier before-rmmod 120
# rmmod with peers connected finishes within seconds.
t0=$(date +%s.%N)
unload_mars
took=$(echo "$(date +%s.%N) - $t0" | bc)
echo "rmmod took $took s"
(( $(echo "$took < 5" | bc) )) || fail "rmmod with peers connected took $took s"
echo "cluster join OK"
