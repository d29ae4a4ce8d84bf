#!/usr/bin/env bash
# Benchmark: one MARS connection over the long lossy link of ../shared/docs/anchors.md (netem
# delay 25 ms and 0.5 % loss on both ends, RTT about 54 ms) against a plain TCP connection
# between the same two VMs, clean and lossy, several rounds alternating. The MARS side is
# node1's kernel server answering a full tree pull of about 2.6 MB (2,500 entries of 1 KB) to an
# independent client (tests/qemu/guest/peer_tool.py fetch); the reference is a Python TCP
# stream of the same size. Prints a table and writes it to $OUT/results.txt; `ss -tmi` of the
# server's connection shows its window.
#   scripts/bench-link.sh            ROUNDS=3 by default
source "$(dirname "$0")/common.sh"
need_root
KDIR=${KDIR:-$("$MARS_ROOT/scripts/kernel.sh")}
export KDIR
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null
OUT=$(mktemp -d "${TMPDIR:-/tmp}/mars-bench-link.XXXXXX")
SEED=${MARS_SEED:-1}
RANDOM=$SEED
ROUNDS=${ROUNDS:-3}
export OUT SEED ROUNDS
source "$MARS_ROOT/tests/qemu/cluster.sh"
trap cluster_teardown EXIT
echo "$ROUNDS" >"$OUT/rounds"
log "two VMs, $ROUNDS rounds; logs in $OUT"
cluster_init 2
node_start 1 bench-link.sh || die "node1 did not start"
node_start 2 bench-link.sh || die "node2 did not start"
timeout 1800 bash -c 'while [ ! -e "$0/node1.rc" ] || [ ! -e "$0/node2.rc" ]; do sleep 2; done' "$OUT" ||
  die "the benchmark did not finish in 30 min; see $OUT"
for k in 1 2; do node_wait "$k" || die "node$k failed: see $OUT/node$k.log"; done
cat "$OUT/results.txt"
