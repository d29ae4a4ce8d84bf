#!/usr/bin/env bash
# The main job (README): sets the host up, builds the kernel (cached) and mars.ko, boots one VM
# that loads mars.ko and shows its status through marsadm.
source "$(dirname "$0")/common.sh"
need_root

"$MARS_ROOT/scripts/setup-host.sh"
KDIR=$("$MARS_ROOT/scripts/kernel.sh")
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null

out=$(mktemp -d "${TMPDIR:-/tmp}/mars-demo.XXXXXX")
trap 'rm -rf "$out"' EXIT
cat >"$out/demo.sh" <<GUEST
set -e
export PATH="$MARS_ROOT/target/release:\$PATH"
echo "# insmod mars.ko"; insmod "$MARS_ROOT/mars.ko"
echo "# cat /proc/mars/status"; cat /proc/mars/status
echo "# marsadm view"; marsadm view
echo "# marsadm view --json"; marsadm view --json
echo "# rmmod mars"; rmmod mars
dmesg | grep -E 'MARS' || true
GUEST
log "booting a VM (TCG, about 15 s)"
timeout --kill-after=10 300 vng --run "$KDIR" --disable-kvm --name mars-demo --cpus 1 --memory 1G \
  --rwdir="$out" --exec "bash $out/demo.sh" </dev/null
