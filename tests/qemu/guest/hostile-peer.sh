# Guest side of scenarios/hostile-peer.sh: node1 and node2 are members, node3 attacks node1.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/peer_tool.py"

slab_kb() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
up_ms() { peer_line "node$1" | sed -n 's/.* up_ms=\([0-9]*\).*/\1/p'; }

load_mars interval_ms=1000
mount_mars
case $NODE in
1 | 2)
  form_cluster
  peer=$(( NODE == 1 ? 2 : 1 ))
  wait_peer_up "$peer"
  sleep 2
  slab_before=$(slab_kb); up_before=$(up_ms "$peer"); t_before=$(date +%s%3N)
  mark members-up
  wait_mark 3 400 attacked
  # Sessions of the attack end (silent ones after the handshake timeout) and are reaped.
  sleep 15
  slab_after=$(slab_kb); up_after=$(up_ms "$peer"); t_after=$(date +%s%3N)
  echo "slab: $slab_before kB before the attack, $slab_after kB after"
  [ $(( slab_after - slab_before )) -lt 8192 ] || fail "slab grew by $(( slab_after - slab_before )) kB"
  [ $(( up_after - up_before )) -ge $(( t_after - t_before - 2500 )) ] ||
    fail "the member connection was disturbed (up $up_before ms, then $up_after ms)"
  if [ "$NODE" = 1 ]; then
    grep -q "^cluster member" /proc/mars/status || fail "node1 is no member any more"
    dmesg | grep -E "tree channel: (refused|closed)" | head -20
    expect_dmesg "tree channel: refused peer 10\.78\.0\.3:[0-9]+: too many connections"
    # Rmmod cases: a peer that stopped reading (authenticated, a large tree asked for and never
    # read), a connect in progress to a member that does not answer, and node2 connected.
    # node2 counts from before the first key is written (it pulls while they are written).
    wait_mark 2 120 bulk-ready
    python3 -c "
import os, time
os.makedirs('/mars/defaults/bulk', exist_ok=True)
stamp = '%d.%09d@%016x' % (int(time.time()), 0, 1)
for i in range(6000):
    os.symlink('v' * 250 + '|' + stamp, '/mars/defaults/bulk/k%05d' % i)
"
    mark bulk-written
    wait_mark 3 240 stalled
    # The reply to the stalled reader is stuck in the socket: bytes wait in its send queue.
    wait_for "ss -tnH state established '( sport = :7777 and dst 10.78.0.3 )' | awk '\$2 > 0 {f=1} END {exit !f}'" 30
    ss -tn state established '( sport = :7777 and dst 10.78.0.3 )'
    # A member that does not answer: its address is routed to node3, which drops the packets.
    read -r _ via3 <<<"$(link_of 3)"
    ip route add 10.78.0.99/32 via "$via3"
    put_key ips/ip-ghost 10.78.0.99
    wait_for "peer_line ghost | grep -q 'tree=connecting'" 20
    peer_line ghost
    t0=$(date +%s%3N)
    unload_mars
    took=$(( $(date +%s%3N) - t0 ))
    echo "rmmod took $took ms with node2 connected, a connect in progress and a stalled reader"
    [ "$took" -lt 5000 ] || fail "rmmod took $took ms"
    mark unloaded
  else
    # A large change reaches the peer in one exchange: 6,000 new keys (1.6 MB) pulled and stored.
    # Counted by the module (entries merged from node1, from before node1 writes the first key:
    # node2 pulls while they are written); listing 6,000 names would compete for the CPU.
    merged() { peer_line node1 | sed -n 's/.* merged=\([0-9]*\).*/\1/p'; }
    m0=$(merged) polls=0
    t0=$(date +%s%3N)
    mark bulk-ready
    wait_mark 1 300 bulk-written
    while n=$(( $(merged) - m0 )); [ "$n" -lt 6000 ]; do
      [ $(( $(date +%s%3N) - t0 )) -lt $(( 300000 * SLOW )) ] || fail "only $n of 6000 keys merged after $(( 300 * SLOW )) s"
      (( ++polls % 10 )) || echo "$n keys merged after $polls s: $(peer_line node1)"
      sleep 1
    done
    [ "$(find /mars/defaults/bulk -maxdepth 1 -type l | wc -l)" = 6000 ] || fail "not all 6000 keys are stored"
    echo "6000 keys written on node1 were stored here $(( $(date +%s%3N) - t0 )) ms after node1 began writing them"
    grep "^peer node1 " /proc/mars/status
    mark bulk-pulled
    wait_mark 1 300 unloaded
    unload_mars
  fi
  ;;
3)
  wait_mark 1 300 members-up
  wait_mark 2 300 members-up
  $tool garbage 10.78.0.1 7777
  $tool oversized 10.78.0.1 7777
  $tool oversized 10.78.0.1 7778
  $tool early 10.78.0.1 7777
  $tool half 10.78.0.1 7779 &
  half=$!
  # Past the refusal log's 5 s window of the attacks before, so the flood's refusal is logged.
  sleep 6
  $tool flood 10.78.0.1 7777 200 5
  wait $half
  mark attacked
  # The stalled reader: authenticated with the real secret, asks for the whole tree.
  wait_mark 2 300 bulk-pulled
  $tool stall 10.78.0.1 7777 "$OUT/secret" node3 120 >"$OUT/stall.out" 2>&1 &
  stall=$!
  wait_for "grep -q stalled '$OUT/stall.out'" 30
  cat "$OUT/stall.out"
  mark stalled
  wait_mark 1 120 unloaded
  kill "$stall" 2>/dev/null || true
  ;;
esac
echo "hostile peer OK"
