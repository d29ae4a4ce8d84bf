# Guest side of scenarios/lossy-link.sh (two nodes).
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

SIZE=$((96 << 20))
JOB=$((24 << 20))
load_mars interval_ms=1000
mount_mars
peer=$(( NODE == 1 ? 2 : 1 ))
read -r iface _ <<<"$(link_of "$peer")"
modprobe sch_netem
form_cluster

# This end of the link gets 25 ms delay and 0.5 % loss.
make_lossy() {
  tc qdisc replace dev "$iface" root netem delay 25ms loss 0.5%
  echo "link to node$peer: $(ping -c 3 -i 0.2 -q 10.78.0.$peer | tail -1)"
}

# Writes $JOB bytes sequentially (1 MiB, queue depth 8) from offset $1 of /dev/mars/r0; prints
# the bandwidth in KiB/s.
write_job() {
  fio --name=seq --filename=/dev/mars/r0 --rw=write --bs=1M --size=$JOB --offset="$1" --ioengine=libaio \
    --iodepth=8 --direct=1 --refill_buffers --output-format=json | jq '.jobs[0].write.bw'
}

# The byte offset in this node's newest copy of the primary's logfile (one logfile here).
fetched() { local f; f=$(tree_value resource-r0/actual-node2/fetch); echo "${f##*,}"; }

case $NODE in
1)
  marsadm create-resource r0 /dev/vda --size $SIZE
  alone=$(write_job 0)
  echo "primary alone: $alone KiB/s"
  mark resource
  wait_mark 2 600 synced
  make_lossy
  with=$(write_job $JOB)
  echo "primary with a secondary fetching over the lossy link: $with KiB/s (alone: $alone KiB/s)"
  [ $((with * 2)) -ge "$alone" ] || fail "the primary slowed down with a peer: $with KiB/s, $alone KiB/s alone"
  sync
  wait_for "[ -n \"\$(tree_value resource-r0/actual-node1/log)\" ]" 10
  sleep 3
  device_sha /dev/mars/r0 $SIZE >"$OUT/sha.1"
  mark written
  wait_mark 2 600 compared
  ;;
2)
  join_secondary r0
  t0=$(date +%s)
  marsadm wait-sync r0 --timeout 400 || fail "wait-sync: $(tree_value resource-r0/syncstatus-node2)"
  echo "synced $(( $(date +%s) - t0 )) s after the join; $(sync_field r0 4) bytes crossed the link"
  wait_consistent r0 120
  make_lossy
  marsadm set-fetch-rate r0 1M
  mark synced
  # While node1 writes: at most 1 MiB/s (plus the 2 MiB burst and a piece in flight) for 10 s.
  wait_for "[ \"\$(fetched)\" -gt 0 ] && [ \"\$(tree_value resource-r0/actual-node2/lag | cut -d' ' -f1)\" -gt $((4 << 20)) ]" 120
  from=$(fetched)
  sleep 10
  moved=$(( $(fetched) - from ))
  echo "fetched $moved bytes in 10 s at a 1 MiB/s limit; lag $(tree_value resource-r0/actual-node2/lag)"
  [ "$moved" -le $((14 << 20)) ] || fail "the fetch limit of 1 MiB/s let $moved bytes through in 10 s"
  [ "$moved" -gt 0 ] || fail "nothing fetched in 10 s at 1 MiB/s"
  marsadm view r0 | grep -E "lag .* s behind|lag .*not caught up" || fail "view shows no lag in seconds"
  marsadm view r0 | grep -q "rate limits   sync unlimited, fetch 1 MiB/s" || fail "view shows no fetch limit"
  marsadm set-fetch-rate r0 unlimited
  wait_mark 1 600 written
  t0=$(date +%s)
  marsadm wait-replay r0 --timeout 400 || fail "wait-replay: replay $(tree_value resource-r0/replay-node2)"
  echo "caught up $(( $(date +%s) - t0 )) s after the primary's writes ended"
  sha=$(device_sha /dev/vda $SIZE)
  [ "$sha" = "$(cat "$OUT/sha.1")" ] || fail "the secondary's data device differs from the primary's"
  marsadm view r0
  mark compared
  ;;
esac
barrier done 120
unload_mars
echo "lossy-link OK"
