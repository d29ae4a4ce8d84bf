#!/usr/bin/env bash
# The main job (README): sets the host up, builds the kernel (cached) and mars.ko, boots one VM
# that creates a cluster and a resource, mounts ext4 on /dev/mars/r0, writes to it and shows the
# status through marsadm; then takes it down cleanly.
source "$(dirname "$0")/common.sh"
need_root

"$MARS_ROOT/scripts/setup-host.sh"
KDIR=$("$MARS_ROOT/scripts/kernel.sh")
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null

out=$(mktemp -d "${TMPDIR:-/tmp}/mars-demo.XXXXXX")
trap 'rm -rf "$out"' EXIT
truncate -s 256M "$out/data.img"
truncate -s 512M "$out/mars.img"
cat >"$out/demo.sh" <<GUEST
set -e
export PATH="$MARS_ROOT/target/release:\$PATH"
run() { echo "# \$*"; "\$@"; }
run mkfs.ext4 -q /dev/vdb
run mount /dev/vdb /mars
run insmod "$MARS_ROOT/mars.ko"
run marsadm create-cluster --ip 192.0.2.1
run marsadm create-resource r0 /dev/vda
run mkfs.ext4 -q /dev/mars/r0
mkdir -p /tmp/r0
run mount /dev/mars/r0 /tmp/r0
run dd if=/dev/urandom of=/tmp/r0/file bs=1M count=16 conv=fsync status=none
run df -h /tmp/r0
run ls -l /mars/resource-r0
run marsadm view
run cat /proc/mars/status
run umount /tmp/r0
run marsadm secondary r0
run marsadm down r0
run rmmod mars
dmesg | grep -E 'mars:' || true
GUEST
log "booting a VM (TCG, about 30 s)"
timeout --kill-after=10 300 vng --run "$KDIR" --disable-kvm --name node1 --cpus 1 --memory 1G \
  --rwdir="$out" \
  --qemu-opts="-drive file=$out/data.img,if=virtio,format=raw,cache=none -drive file=$out/mars.img,if=virtio,format=raw,cache=none" \
  --exec "bash $out/demo.sh" </dev/null
