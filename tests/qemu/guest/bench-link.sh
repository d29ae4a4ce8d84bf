# Guest side of scripts/bench-link.sh (two nodes).
# (no `set -e` surprises: lib.sh sets -euo pipefail)
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
tool="python3 $MARS_ROOT/tests/qemu/guest/peer_tool.py"
peer=$(( NODE == 1 ? 2 : 1 ))
ROUNDS=$(cat "$OUT/rounds")

# node1 is the member whose kernel serves; node2 only runs the clients (it needs the secret, not
# membership), so no pulls of node2's own compete with the measurement.
if [ "$NODE" = 1 ]; then
  load_mars interval_ms=1000
  mount_mars
  marsadm create-cluster --ip 10.78.0.1
  cp /mars/.secret "$OUT/secret"
  python3 -c "
import os, time
os.makedirs('/mars/defaults/bulk', exist_ok=True)
stamp = '%d.%09d@%016x' % (int(time.time()), 0, 1)
for i in range(2500):
    os.symlink('v' * 1000 + '|' + stamp, '/mars/defaults/bulk/k%05d' % i)
"
fi
barrier ready 600
read -r iface _ <<<"$(link_of "$peer")"
for round in $(seq 1 "$ROUNDS"); do
  for link in clean lossy; do
    if [ "$link" = lossy ]; then
      modprobe sch_netem
      tc qdisc replace dev "$iface" root netem delay 25ms loss 0.5%
    else
      tc qdisc del dev "$iface" root 2>/dev/null || true
    fi
    barrier "link-$round-$link" 120
    if [ "$NODE" = 2 ]; then
      rtt=$(ping -c 5 -q 10.78.0.1 | awk -F/ '/rtt/ {print $5}')
      $tool fetch 10.78.0.1 7777 "$OUT/secret" node2 >/tmp/fetch.out
      mars=$(sed -n 's/.*: \([0-9.]*\) MB\/s/\1/p' /tmp/fetch.out)
      bytes=$(sed -n 's/^fetch: \([0-9]*\) bytes.*/\1/p' /tmp/fetch.out)
      $tool source 10.78.0.1 9999 "$bytes" >/tmp/src.out
      ref=$(sed -n 's/.*: \([0-9.]*\) MB\/s/\1/p' /tmp/src.out)
      echo "$round $link rtt_ms=$rtt mars_MBps=$mars tcp_MBps=$ref" | tee -a "$OUT/raw.txt"
    else
      $tool sink 10.78.0.1 9999 &
      sink=$!
      # The server's connection while the client fetches: window and congestion state.
      ( sleep 3; ss -tmi state established '( sport = :7777 and dst 10.78.0.2 )' >>"$OUT/ss-$round-$link.txt" ) &
      wait "$sink"
    fi
    barrier "done-$round-$link" 600
  done
done
if [ "$NODE" = 2 ]; then
  {
    echo "# scripts/bench-link.sh: one connection, full tree pull (MARS kernel server) vs plain TCP"
    echo "# round link rtt mars_MBps tcp_MBps"
    cat "$OUT/raw.txt"
    for link in clean lossy; do
      awk -v l="$link" '$2 == l { split($4, m, "="); split($5, t, "="); ms += m[2]; ts += t[2]; n++ }
        END { if (n) printf "mean %s: MARS %.2f MB/s, TCP %.2f MB/s, ratio %.2f\n", l, ms / n, ts / n, (ms / n) / (ts / n) }' "$OUT/raw.txt"
    done
  } >"$OUT/results.txt"
fi
barrier end 120
[ "$NODE" = 1 ] && unload_mars
true
