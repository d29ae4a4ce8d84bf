# Guest side of scripts/bench-replication.sh (two nodes). node1 is the primary and runs every fio
# job; node2 is MARS's secondary and DRBD's peer. Disks: /dev/vda MARS's data device, /dev/vdb
# /mars, /dev/vdc the raw disk (and DRBD's backing disk). Results go to $OUT/raw.txt as lines
# `ROUND CONFIG JOB VALUE UNIT`, extra measurements to $OUT/extra.txt.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

ROUNDS=$(cat "$OUT/rounds")
SIZE=$((256 << 20))
peer=$(( NODE == 1 ? 2 : 1 ))
read -r iface _ <<<"$(link_of "$peer")"
modprobe sch_netem
modprobe sch_tbf

# The link of this node: clean, lossy (anchors.md: 25 ms + 0.5% loss each way) or 100 Mbit/s.
set_link() {
  tc qdisc del dev "$iface" root 2>/dev/null || true
  case $1 in
    lossy) tc qdisc add dev "$iface" root netem delay 25ms loss 0.5% ;;
    tbf) tc qdisc add dev "$iface" root tbf rate 100mbit burst 128kb latency 50ms ;;
  esac
}

# The three jobs of anchors.md on device $1 for config $2 of round $3 (node1 only).
fio_jobs() {
  local dev=$1 config=$2 round=$3 bw iops
  bw=$(fio --name=seq --filename="$dev" --direct=1 --rw=write --bs=1M --iodepth=8 --ioengine=libaio \
    --size=$((128 << 20)) --time_based --runtime=10 --output-format=json | jq '.jobs[0].write.bw')
  echo "$round $config seq1m $bw KB/s" >>"$OUT/raw.txt"
  iops=$(fio --name=rand --filename="$dev" --direct=1 --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio \
    --size=$((128 << 20)) --time_based --runtime=15 --output-format=json | jq '.jobs[0].write.iops | floor')
  echo "$round $config rand4k-qd16 $iops IOPS" >>"$OUT/raw.txt"
  iops=$(fio --name=qd1 --filename="$dev" --direct=1 --rw=randwrite --bs=4k --ioengine=psync \
    --size=$((128 << 20)) --time_based --runtime=10 --output-format=json | jq '.jobs[0].write.iops | floor')
  echo "$round $config rand4k-qd1 $iops IOPS" >>"$OUT/raw.txt"
  tail -3 "$OUT/raw.txt"
}

# Busy and total jiffies of this node's CPUs (from /proc/stat).
cpu_now() { awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8; print busy, busy + $5 + $6 }' /proc/stat; }

# CPU jiffies (user + system) of every thread, one line each: `TID COMM JIFFIES`.
threads_now() {
  awk '{ i = index($0, ") "); comm = substr($0, index($0, "(") + 1, i - index($0, "(") - 1)
         split(substr($0, i + 2), f, " "); gsub(/ /, "_", comm); print $1, comm, f[12] + f[13] }' \
    /proc/[0-9]*/task/[0-9]*/stat 2>/dev/null
}

# Where the CPU went between two `threads_now` snapshots ($1, $2) and two /proc/stat cpu lines
# ($3, $4): the kinds of time (user, system, irq, softirq, iowait) and the ten busiest threads.
cpu_breakdown() {
  echo "$3" "$4" | awk '{ printf "cpu-kinds user=%d system=%d irq=%d softirq=%d iowait=%d idle=%d\n",
    $13-$2, $15-$4, $18-$7, $19-$8, $17-$6, $16-$5 }'
  awk 'NR == FNR { before[$1] = $3; next }
       { d = $3 - before[$1]; if (d > 0) print d, $2 }' "$1" "$2" |
    sort -rn | head -10 | awk '{ printf "cpu-thread %s jiffies=%d\n", $2, $1 }'
}

# Seconds between two `date +%s.%N` stamps.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# node1: deletes every logfile but a new current one, leaving node2 behind (it syncs after).
mars_trim() {
  [ "$NODE" = 1 ] || return 0
  marsadm log-rotate r0 >/dev/null
  marsadm log-delete r0 --leave-behind node2 >/dev/null
}

# node2: fetches again and waits until it is in sync and replayed (a fast sync first if node1
# left it behind), then pauses the fetch.
mars_resync() {
  local i state
  marsadm resume-fetch r0 >/dev/null
  for i in $(seq 1 300); do
    [ "$(tree_value resource-r0/syncstatus-node2)" != "$SIZE/$SIZE" ] && break
    state=$(tree_value resource-r0/actual-node2/fetch-state || true)
    [ "$state" = up-to-date ] && break
    sleep 0.2
  done
  marsadm wait-sync r0 --timeout 900 >/dev/null
  marsadm wait-replay r0 --timeout 900 >/dev/null
  marsadm pause-fetch r0 >/dev/null
}

drbd_conf() {
  cat >/tmp/drbd.conf <<EOF
resource r0 {
  protocol $1;
  disk { al-extents 3389; }
  net { max-buffers 8000; max-epoch-size 8000; sndbuf-size 0; }
  on node1 { device /dev/drbd0; disk /dev/vdc; address 10.78.0.1:7789; meta-disk internal; }
  on node2 { device /dev/drbd0; disk /dev/vdc; address 10.78.0.2:7789; meta-disk internal; }
}
EOF
}

load_mars interval_ms=1000
mount_mars
form_cluster
case $NODE in
1) create_primary r0 $SIZE ;;
2) join_secondary r0; marsadm wait-sync r0 --timeout 300; wait_consistent r0 120; marsadm pause-fetch r0 ;;
esac
barrier mars-ready 600

for round in $(seq 1 "$ROUNDS"); do
  # Alternating order: odd rounds MARS first, even rounds DRBD first.
  if [ $((round % 2)) = 1 ]; then order="raw mars drbd"; else order="drbd raw mars"; fi
  for part in $order; do
    case $part in
    raw)
      barrier "raw-$round" 300
      [ "$NODE" = 1 ] && fio_jobs /dev/vdc raw "$round"
      ;;
    mars)
      set_link clean
      barrier "mars-alone-$round" 300
      # node2's fetch is paused: no peer asks the primary for anything.
      [ "$NODE" = 1 ] && fio_jobs /dev/mars/r0 mars-alone "$round"
      for link in clean lossy; do
        set_link "$link"
        [ "$NODE" = 2 ] && marsadm resume-fetch r0 >/dev/null
        barrier "mars-$link-$round" 300
        [ "$NODE" = 1 ] && { fio_jobs /dev/mars/r0 "mars-$link" "$round"; mark "mars-$link-$round-done"; }
        # node2 fetched while node1 wrote; it stops, node1 leaves it behind and trims.
        if [ "$NODE" = 2 ]; then
          wait_mark 1 600 "mars-$link-$round-done"
          marsadm pause-fetch r0 >/dev/null
        fi
        barrier "mars-$link-$round-paused" 120
        mars_trim
        # Back in sync (a fast sync of what changed), on a clean link, fetch paused again.
        set_link clean
        [ "$NODE" = 2 ] && mars_resync
        barrier "mars-$link-$round-resynced" 1200
      done
      ;;
    drbd)
      for proto in A C; do
        for link in clean lossy; do
          drbd_conf $proto
          set_link clean
          modprobe drbd
          drbdadm -c /tmp/drbd.conf -- --force create-md r0 <<<$'yes\nyes' >/tmp/create-md.out 2>&1 \
            || { cat /tmp/create-md.out; fail "drbdadm create-md"; }
          drbdadm -c /tmp/drbd.conf up r0
          barrier "drbd-$proto-$link-$round-up" 120
          wait_for "grep -q 'cs:Connected' /proc/drbd" 60
          if [ "$NODE" = 1 ]; then
            drbdadm -c /tmp/drbd.conf -- --clear-bitmap new-current-uuid r0
            drbdadm -c /tmp/drbd.conf primary r0
          fi
          set_link "$link"
          barrier "drbd-$proto-$link-$round-go" 120
          [ "$NODE" = 1 ] && fio_jobs /dev/drbd0 "drbd-$proto-$link" "$round"
          barrier "drbd-$proto-$link-$round-done" 900
          set_link clean
          [ "$NODE" = 1 ] && drbdadm -c /tmp/drbd.conf secondary r0
          drbdadm -c /tmp/drbd.conf down r0
          barrier "drbd-$proto-$link-$round-down" 120
          rmmod drbd
        done
      done
      ;;
    esac
  done
done

# Catch-up on a 100 Mbit/s link: node2 paused while node1 writes 128 MiB, then resumed. First
# the reference: one plain TCP connection from node1 to node2 over the same shaped link.
set_link tbf
if [ "$NODE" = 2 ]; then
  threads_now >/tmp/threads0
  stat0=$(grep '^cpu ' /proc/stat)
  python3 "$MARS_ROOT/tests/qemu/guest/peer_tool.py" sink 10.78.0.2 9999 &
  sink=$!
  mark sink
  wait "$sink"
  threads_now >/tmp/threads1
  cpu_breakdown /tmp/threads0 /tmp/threads1 "$stat0" "$(grep '^cpu ' /proc/stat)" |
    sed "s/^/tcp-reference node2 /" >>"$OUT/extra.txt"
else
  wait_mark 2 60 sink
  sleep 1
  python3 "$MARS_ROOT/tests/qemu/guest/peer_tool.py" source 10.78.0.2 9999 $((128 << 20)) |
    sed 's/^source:/tcp-reference on the tbf link:/' >>"$OUT/extra.txt"
fi
barrier tcp-reference 300
[ "$NODE" = 2 ] && marsadm pause-fetch r0 >/dev/null
barrier catchup-write 300
if [ "$NODE" = 1 ]; then
  fio --name=fill --filename=/dev/mars/r0 --direct=1 --rw=write --bs=1M --iodepth=8 --ioengine=libaio \
    --size=$((128 << 20)) --output-format=terse >/dev/null
  sync; sleep 3
  tree_value resource-r0/actual-node1/log >"$OUT/catchup-end"
fi
barrier catchup-go 300
read -r b0 t0 <<<"$(cpu_now)"
threads_now >/tmp/threads0
stat0=$(grep '^cpu ' /proc/stat)
s0=$(date +%s.%N)
if [ "$NODE" = 2 ]; then
  from=$(tree_value resource-r0/replay-node2)
  # `recv=W/C store=W/C ...`; empty while the fetch is paused (a resumed fetch counts from zero).
  work0=$(tree_value resource-r0/actual-node2/fetch-work || true)
  marsadm resume-fetch r0 >/dev/null
  marsadm wait-replay r0 --timeout 900 >/dev/null
  s1=$(date +%s.%N)
  echo "catchup from $from to $(tree_value resource-r0/replay-node2)" >>"$OUT/extra.txt"
  # The status is published once per strategy round (1 s).
  sleep 1.5
  work1=$(tree_value resource-r0/actual-node2/fetch-work)
  echo "catchup fetch-work (ms wall/cpu, after minus before): $(awk -v a="$work0" -v b="$work1" 'BEGIN {
    n = split(b, after, " "); split(a, before, " ")
    for (i = 1; i <= n; i++) {
      split(after[i], x, "[=/]"); split(before[i], y, "[=/]")
      printf "%s%s=%d/%d", (i > 1 ? " " : ""), x[1], x[2] - y[2], x[3] - y[3]
    } }')" >>"$OUT/extra.txt"
  mark caught-up
else
  wait_mark 2 900 caught-up
  s1=$(date +%s.%N)
fi
read -r b1 t1 <<<"$(cpu_now)"
threads_now >/tmp/threads1
cpu_breakdown /tmp/threads0 /tmp/threads1 "$stat0" "$(grep '^cpu ' /proc/stat)" | sed "s/^/node$NODE /" >>"$OUT/extra.txt"
# USER_HZ is 100: busy jiffies / 100 are CPU seconds.
echo "catchup node$NODE seconds=$(elapsed "$s0" "$s1") cpu_busy_jiffies=$((b1 - b0)) all_jiffies=$((t1 - t0))" >>"$OUT/extra.txt"
barrier catchup-done 120

# Fast sync of identical disks against a full sync, on the 100 Mbit/s link.
for kind in fast full; do
  if [ "$NODE" = 2 ]; then
    moved0=$(sync_field r0 4)
    s0=$(date +%s.%N)
    if [ $kind = full ]; then marsadm invalidate --full r0 >/dev/null; else marsadm invalidate r0 >/dev/null; fi
    wait_for "[ \"\$(tree_value resource-r0/syncstatus-node2)\" != \"$SIZE/$SIZE\" ]" 60
    marsadm wait-sync r0 --timeout 900 >/dev/null
    s1=$(date +%s.%N)
    echo "sync-$kind seconds=$(elapsed "$s0" "$s1") transferred=$(( $(sync_field r0 4) - moved0 ))" >>"$OUT/extra.txt"
    marsadm wait-replay r0 --timeout 600 >/dev/null
  fi
  barrier "sync-$kind" 1200
done
set_link clean
barrier end 120
unload_mars
true
