# Guest side of scenarios/prefix.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/seq_blocks.py"

BLOCKS=2048 WRITES=20000 SIZE=$((32 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1)
  marsadm create-resource r0 /dev/vda --size $SIZE
  mark resource
  wait_mark 2 240 joined
  t0=$(date +%s)
  $tool write /dev/mars/r0 $BLOCKS $WRITES
  echo "wrote $WRITES blocks in $(( $(date +%s) - t0 )) s"
  sleep 3
  dd if=/dev/mars/r0 bs=1M count=$((SIZE >> 20)) iflag=direct status=none | sha256sum | cut -d' ' -f1 >"$OUT/sha.1"
  mark written
  wait_mark 2 300 compared
  ;;
2)
  wait_mark 1 240 resource
  wait_for "[ -n \"\$(tree_value resource-r0/size)\" ]" 20
  marsadm join-resource r0 /dev/vda
  mark joined
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
  sha=$(dd if=/dev/vda bs=1M count=$((SIZE >> 20)) iflag=direct status=none | sha256sum | cut -d' ' -f1)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "prefix OK"
