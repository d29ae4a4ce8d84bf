#!/usr/bin/env bash
# Benchmark (not a test) of issue 12: the primary's write performance with and without a
# replicating peer, side by side with the raw disk and DRBD 8.4 in one run, as
# ../shared/docs/anchors.md measures DRBD. Two VMs, each pinned to its own host core (taskset;
# 1 vCPU, 1 GiB), linked by a QEMU socket on 127.0.0.1. Per round, alternating the order:
#   raw /dev/vdc; MARS primary alone (the secondary's fetch paused); MARS with the secondary
#   fetching on the clean link and on the lossy one (netem 25 ms + 0.5% loss on both ends);
#   DRBD protocol A and C on both links (meta-disk internal, initial sync skipped).
# Jobs: seq write 1M qd8 (10 s), rand write 4k qd16 (15 s), rand write 4k qd1 psync (10 s).
# Then on a tbf-shaped 100 Mbit/s link: one plain TCP connection as the reference, the
# secondary's catch-up of 128 MiB (time, CPU of both nodes per replicated MiB), and a fast sync
# of identical disks against a full sync.
# Prints a markdown table of means with ratios and writes it, with the raw lines, to
# $MARS_LOGS/bench-replication.md.
#   scripts/bench-replication.sh            ROUNDS=2 by default
#   ROUNDS=0 scripts/bench-replication.sh   only the tbf part (catch-up, fast and full sync)
source "$(dirname "$0")/common.sh"
need_root
"$MARS_ROOT/scripts/setup-host.sh" >/dev/null
KDIR=${KDIR:-$("$MARS_ROOT/scripts/kernel.sh")}
export KDIR
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mars-bench-repl.XXXXXX")
SEED=${MARS_SEED:-1}
RANDOM=$SEED
ROUNDS=${ROUNDS:-2}
export OUT SEED ROUNDS
DATA_MB=320 MARS_MB=4096 EXTRA_MB=1024 NODE_CPUS=1 NODE_MEM=1G NODE_PIN=1
source "$MARS_ROOT/tests/qemu/cluster.sh"
trap cluster_teardown EXIT
echo "$ROUNDS" >"$OUT/rounds"
: >"$OUT/raw.txt"
log "two VMs pinned to host cores 0 and 1, $ROUNDS rounds; logs in $OUT"
cluster_init 2
node_start 1 bench-replication.sh || die "node1 did not start"
node_start 2 bench-replication.sh || die "node2 did not start"
timeout 5400 bash -c 'while [ ! -e "$0/node1.rc" ] || [ ! -e "$0/node2.rc" ]; do sleep 2; done' "$OUT" ||
  die "the benchmark did not finish in 90 min; see $OUT"
for k in 1 2; do node_wait "$k" || die "node$k failed: see $OUT/node$k.log"; done
results="$MARS_LOGS/bench-replication.md"
{
  echo "# scripts/bench-replication.sh, $(date -u +%Y-%m-%d), $ROUNDS rounds (means; units: seq KB/s, rand IOPS)"
  echo
  awk '
    { v[$2, $3] += $4; n[$2, $3]++; if (!seenc[$2]++) cs[++nc] = $2; if (!seenj[$3]++) js[++nj] = $3 }
    function m(c, j) { return n[c, j] ? v[c, j] / n[c, j] : 0 }
    function r(a, b) { return b ? sprintf("%.2f", a / b) : "-" }
    END {
      printf "| config |"; for (j = 1; j <= nj; j++) printf " %s |", js[j]; print ""
      printf "|---|"; for (j = 1; j <= nj; j++) printf "---:|"; print ""
      for (c = 1; c <= nc; c++) {
        printf "| %s |", cs[c]; for (j = 1; j <= nj; j++) printf " %d |", m(cs[c], js[j]); print ""
      }
      print ""
      printf "| ratio |"; for (j = 1; j <= nj; j++) printf " %s |", js[j]; print ""
      printf "|---|"; for (j = 1; j <= nj; j++) printf "---:|"; print ""
      split("mars-alone/raw mars-clean/mars-alone mars-lossy/mars-alone mars-lossy/drbd-A-lossy mars-lossy/drbd-C-lossy mars-clean/drbd-A-clean drbd-A-lossy/drbd-A-clean", rs, " ")
      for (i = 1; i in rs; i++) {
        split(rs[i], p, "/"); printf "| %s |", rs[i]
        for (j = 1; j <= nj; j++) printf " %s |", r(m(p[1], js[j]), m(p[2], js[j])); print ""
      }
    }' "$OUT/raw.txt"
  echo
  echo "Catch-up and sync on a 100 Mbit/s tbf link (12.5 MB/s):"
  echo
  sed 's/^/    /' "$OUT/extra.txt"
  echo
  echo "Raw lines (round config job value unit):"
  echo
  sed 's/^/    /' "$OUT/raw.txt"
} >"$results"
cat "$results"
log "results in $results; VM logs in $OUT"
