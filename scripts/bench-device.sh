#!/usr/bin/env bash
# Benchmark (not a test): fio on a raw virtio disk and on /dev/mars/r0 in the same VM and run, as
# the project's anchors measure DRBD (fio 3.33, --direct=1; 2 vCPUs, 1 GiB; raw images with
# cache=none,aio=threads). Prints a markdown table with MARS/raw ratios.
#   seq write 1M qd8 (256 MiB) | rand write 4k qd16 (15 s) | rand write 4k qd1 psync (10 s)
# /dev/mars/r0 has its data on /dev/vda and its log on /dev/vdb (ext4 /mars); the raw reference
# is /dev/vdc, an identical image.
source "$(dirname "$0")/common.sh"
need_root
"$MARS_ROOT/scripts/setup-host.sh" >/dev/null
KDIR=$("$MARS_ROOT/scripts/kernel.sh")
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null
out=$(mktemp -d "${TMPDIR:-/tmp}/mars-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
for d in data raw; do truncate -s 1G "$out/$d.img"; done
truncate -s 2G "$out/mars.img"
cat >"$out/bench.sh" <<GUEST
set -e
export PATH="$MARS_ROOT/target/release:\$PATH"
mkfs.ext4 -q /dev/vdb && mount /dev/vdb /mars
insmod "$MARS_ROOT/mars.ko"
marsadm create-cluster --ip 192.0.2.1 >/dev/null
marsadm create-resource r0 /dev/vda >/dev/null
job() { # DEV NAME ARGS...
  local dev=\$1 name=\$2; shift 2
  fio --name=\$name --filename=\$dev --direct=1 --output-format=terse "\$@" | awk -F';' -v d=\$dev -v n=\$name '{print n, d, \$48, \$49, \$81}'
}
for dev in /dev/vdc /dev/mars/r0; do
  job \$dev seq1m --rw=write --bs=1M --iodepth=8 --ioengine=libaio --size=256M
  job \$dev rand4k-qd16 --rw=randwrite --bs=4k --iodepth=16 --ioengine=libaio --size=512M --time_based --runtime=15
  job \$dev rand4k-qd1 --rw=randwrite --bs=4k --ioengine=psync --size=512M --time_based --runtime=10
done >"$out/results"
GUEST
log "running fio in a VM (about 3 minutes)"
timeout --kill-after=10 900 vng --run "$KDIR" --disable-kvm --force-9p --name node1 --cpus 2 --memory 1G --rwdir="$out" \
  --qemu-opts="-drive file=$out/data.img,if=virtio,format=raw,cache=none,aio=threads -drive file=$out/mars.img,if=virtio,format=raw,cache=none,aio=threads -drive file=$out/raw.img,if=virtio,format=raw,cache=none,aio=threads" \
  --exec "bash $out/bench.sh" </dev/null >"$out/console" 2>&1 || { tail -20 "$out/console"; die "benchmark VM failed"; }
# terse v3 fields: 48 write bandwidth KiB/s, 49 write IOPS, 81 write total latency mean (usec)
awk '
  { bw[$1,$2]=$3; iops[$1,$2]=$4; lat[$1,$2]=$5; if (!seen[$1]++) order[++n]=$1 }
  END {
    print "| workload | raw /dev/vdc | /dev/mars/r0 | MARS / raw |"
    print "|---|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
      w = order[i]; r = "/dev/vdc"; m = "/dev/mars/r0"
      if (w == "seq1m") printf "| %s | %d KB/s | %d KB/s | %.2f |\n", w, bw[w,r], bw[w,m], bw[w,m] / bw[w,r]
      else printf "| %s | %d IOPS (%.2f ms) | %d IOPS (%.2f ms) | %.2f |\n", w, iops[w,r], lat[w,r] / 1000, iops[w,m], lat[w,m] / 1000, iops[w,m] / iops[w,r]
    }
  }' "$out/results"
