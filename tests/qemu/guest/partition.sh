# Guest side of scenarios/partition.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((64 << 20))
load_mars interval_ms=1000
mount_mars
form_cluster
peer=$(( NODE == 1 ? 2 : 1 ))

# One 10-second slice of 4 KiB random writes (queue depth 4) on /dev/mars/r0; prints the IOPS.
slice() {
  fio --name=slice --filename=/dev/mars/r0 --rw=randwrite --bs=4k --size=$SIZE --ioengine=libaio --iodepth=4 \
    --direct=1 --time_based --runtime=10 --refill_buffers --output-format=json | jq '.jobs[0].write.iops | floor'
}

# The byte offset in this node's newest copy of the primary's logfile (one logfile here).
fetched() { local f; f=$(tree_value resource-r0/actual-node2/fetch); echo "${f##*,}"; }
fetched_at_cut() { cat "$OUT/fetched-at-cut"; }

case $NODE in
1)
  create_primary r0 $SIZE
  wait_mark 2 300 synced
  before=$(slice)
  echo "before the cut: $before IOPS"
  mark cut
  link_down 2
  during=()
  for i in 1 2 3; do during+=("$(slice)"); done
  link_up 2
  mark healed
  echo "during the cut: ${during[*]} IOPS"
  after=$(slice)
  echo "after the heal: $after IOPS"
  for d in "${during[@]}"; do
    [ $((d * 2)) -ge "$before" ] || fail "the primary stalled during the cut: $d IOPS, $before before it"
  done
  sync
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node1/log)\" ]" 10
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  mark written
  wait_mark 2 400 compared
  ;;
2)
  join_secondary r0
  marsadm wait-sync r0 --timeout 300 || fail "wait-sync: $(tree_value resource-r0/syncstatus-node2)"
  wait_consistent r0 120
  mark synced
  wait_mark 1 120 cut
  link_down 1
  wait_for "marsadm --json view | jq -e '.members[] | select(.name == \"node1\") | .heartbeat_age_s >= 5'" 40
  marsadm view | grep node1
  replay_cut=$(tree_value resource-r0/replay-node2)
  fetched >"$OUT/fetched-at-cut"
  echo "replay at the cut: $replay_cut; $(tree_value resource-r0/actual-node2/fetch-state)"
  wait_mark 1 120 healed
  # Caught up at most 1 MiB/s for 10 s (the limit, its 2 MiB burst, a piece in flight), then
  # without a limit.
  marsadm set-fetch-rate r0 1M
  link_up 1
  wait_for "[ \"\$(fetched)\" -gt \"\$(fetched_at_cut)\" ]" 60
  from=$(fetched)
  sleep 10
  moved=$(( $(fetched) - from ))
  echo "fetched $moved bytes in 10 s at a 1 MiB/s limit; lag $(tree_value resource-r0/actual-node2/lag)"
  [ "$moved" -le $((14 << 20)) ] || fail "the fetch limit of 1 MiB/s let $moved bytes through in 10 s"
  [ "$moved" -ge $((4 << 20)) ] || fail "only $moved bytes in 10 s at a 1 MiB/s limit on a clean link"
  marsadm view r0 | grep -E "lag .* s behind" || fail "view shows no lag in seconds"
  marsadm set-fetch-rate r0 unlimited
  wait_mark 1 300 written
  t0=$(date +%s)
  marsadm wait-replay r0 --timeout 300 || fail "wait-replay: replay $(tree_value resource-r0/replay-node2)"
  echo "caught up $(( $(date +%s) - t0 )) s after the primary's writes ended"
  [ "$(tree_value resource-r0/replay-node2)" != "$replay_cut" ] || fail "replay did not move after the heal"
  sha=$(device_sha /dev/vda $SIZE)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  marsadm view r0
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "partition OK"
