#!/usr/bin/env bash
# The main job (README): sets the host up, builds the kernel (cached) and mars.ko, boots two VMs
# linked over a QEMU socket link on 127.0.0.1. node1 creates a cluster and a resource; node2
# has ext4 on /dev/mars/r0 with a file in it when node2 joins the cluster over kernel TCP and the
# resource as a secondary: node2 syncs (the copy brick, fast: only blocks that differ) while
# node1 writes a second file; node2 fetches and replays node1's log, waits until it holds
# everything node1 logged, shows both hosts' views and checks its copy equal to node1's data;
# then everything is taken down cleanly.
source "$(dirname "$0")/common.sh"
need_root

"$MARS_ROOT/scripts/setup-host.sh"
KDIR=$("$MARS_ROOT/scripts/kernel.sh")
export KDIR
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null

OUT=$(mktemp -d "${TMPDIR:-/tmp}/mars-demo.XXXXXX")
SEED=${MARS_SEED:-1}
RANDOM=$SEED
export OUT SEED
source "$MARS_ROOT/tests/qemu/cluster.sh"
trap cluster_teardown EXIT
log "booting two VMs (TCG, about a minute); logs in $OUT"
cluster_init 2
node_start 1 demo.sh || die "node1 did not start"
node_start 2 demo.sh || die "node2 did not start"
rc=0
if ! timeout 600 bash -c 'while [ ! -e "$0/node1.rc" ] || [ ! -e "$0/node2.rc" ]; do sleep 1; done' "$OUT"; then
  echo "the VMs did not finish within 600 s" >&2
  cluster_teardown
  rc=1
fi
for k in 1 2; do
  node_wait "$k" || rc=1
  echo "=================== node$k ==================="
  cat "$OUT/node$k.log"
done
kernel_logs_trouble "$OUT"/node*.console.* "$OUT"/node*.dmesg "$OUT"/node*.kmemleak || rc=1
[ "$rc" = 0 ] || die "the demo failed: see the logs above and in $OUT"
log "demo done"
