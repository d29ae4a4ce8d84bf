# Guest side of scenarios/prefix.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/seq_blocks.py"

BLOCKS=2048 WRITES=20000 SIZE=$((32 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1)
  create_primary r0 $SIZE
  wait_mark 2 240 joined
  t0=$(date +%s)
  $tool write /dev/mars/r0 $BLOCKS $WRITES
  echo "wrote $WRITES blocks in $(( $(date +%s) - t0 )) s"
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  mark written
  wait_mark 2 300 compared
  ;;
2)
  join_secondary r0
  # A device being synced is no prefix of anything; checks begin once it is consistent.
  marsadm wait-sync r0 --timeout 120
  wait_consistent r0 120
  last=0 checks=0 during=0
  while [ $checks -lt 5 ]; do
    [ -e "$OUT/mark.written.1" ] || during=$((during + 1))
    sleep $((2 + RANDOM % 6))
    marsadm pause-replay r0 >/dev/null
    out=$($tool check /dev/vda $BLOCKS) || fail "paused at $(tree_value resource-r0/replay-node2): $out"
    m=${out##* of }; m=${m%% *}
    echo "paused at $(tree_value resource-r0/replay-node2): $out"
    [ "$m" -ge "$last" ] || fail "the prefix shrank from $last to $m writes"
    last=$m checks=$((checks + 1))
    marsadm resume-replay r0 >/dev/null
  done
  echo "$during of $checks checks while the primary was writing"
  [ $during -ge 1 ] || fail "no check while the primary was writing"
  wait_mark 1 300 written
  marsadm wait-replay r0 --timeout 240
  out=$($tool check /dev/vda $BLOCKS) || fail "after wait-replay: $out"
  echo "after wait-replay: $out"
  [ "$out" = "prefix of $WRITES writes" ] || fail "after wait-replay the device holds a $out, not all $WRITES"
  sha=$(device_sha /dev/vda $SIZE)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "prefix OK"
