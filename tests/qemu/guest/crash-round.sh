# Guest side of scenarios/crash.sh, one boot: set up (first round) or bring r0 and r1 back up
# (replaying their logs) and check everything the earlier rounds had flushed, then write until
# the host kills us. Usage: crash-round.sh ROUND [final]
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
round=$1
io="python3 $MARS_ROOT/tests/qemu/guest/crash_io.py"
blocks=8192   # 32 MiB of 4 KiB blocks on r0
mkdir -p /tmp/r1

if [ "$round" -eq 1 ]; then
  mount_mars
  load_mars interval_ms=200
  marsadm create-cluster --ip 192.0.2.1
  marsadm create-resource r0 /dev/vda --size $((64 << 20))
  marsadm create-resource r1 /dev/vdc
  mkfs.ext4 -q /dev/mars/r1
else
  mount /dev/vdb /mars
  load_mars interval_ms=200
  marsadm up r0 --timeout 120
  marsadm up r1 --timeout 120
  dmesg | grep -E "mars: resource r[01]: (replayed|logfile)" || true
  # The data disk itself holds every flushed write once the log is replayed...
  $io check /dev/vda "$OUT"/journal.* || fail "flushed writes missing on the data disk after replay"
  marsadm primary r0
  marsadm primary r1
  # ...and so does the device users see.
  $io check /dev/mars/r0 "$OUT"/journal.* || fail "flushed writes missing on /dev/mars/r0"
  # ext4 on r1: journal recovery (a mount), then a full check must find nothing to repair.
  mount /dev/mars/r1 /tmp/r1 || fail "cannot mount ext4 on /dev/mars/r1 after the power cut"
  umount /tmp/r1
  e2fsck -fn /dev/mars/r1 || fail "ext4 on /dev/mars/r1 is damaged after the power cut"
  mount /dev/mars/r1 /tmp/r1
  $io check-files /tmp/r1 "$OUT/files.journal" || fail "fsynced files lost on /dev/mars/r1"
  umount /tmp/r1
fi
[ "${2:-}" = final ] && exit 0

mount /dev/mars/r1 /tmp/r1
journals=("$OUT"/journal.{0,1,2,3} "$OUT/files.journal")
touch "${journals[@]}"
declare -A before
for j in "${journals[@]}"; do before[$j]=$(wc -l <"$j"); done
# Odd rounds: two FUA writers and two that flush every 8 writes (nearly every log batch is
# flushed); even rounds: four that flush every 64 (the log disk's cache holds acknowledged but
# unflushed records when the power goes).
modes=(dsync dsync flush:8 flush:8); [ $((round % 2)) -eq 0 ] && modes=(flush:64 flush:64 flush:64 flush:64)
for w in 0 1 2 3; do
  mode=${modes[w]}
  $io write /dev/mars/r0 "$OUT/journal.$w" "$w" 4 $((round * 1000000)) "$blocks" "$mode" "$SEED" &
done
$io files /tmp/r1 "$OUT/files.journal" "$SEED" &
# The host's power cut comes a few seconds after this: only once every writer has got going.
for j in "${journals[@]}"; do wait_for "[ \$(wc -l <$j) -gt ${before[$j]} ]" 120; done
touch "$OUT/writing.$round"
wait
