# Guest side of scenarios/crash.sh, one boot: set up (first round) or bring r0 back up (replaying
# the log), check every write acknowledged in earlier rounds, then write until the host kills us.
# Usage: crash-round.sh ROUND
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
round=$1
io="python3 $MARS_ROOT/tests/qemu/guest/crash_io.py"
workers=4 blocks=8192   # 32 MiB of 4 KiB blocks

if [ "$round" -eq 1 ]; then
  mount_mars
  load_mars interval_ms=200
  marsadm create-cluster --ip 192.0.2.1
  marsadm create-resource r0 /dev/vda --size $((64 << 20))
else
  mount /dev/vdb /mars
  load_mars interval_ms=200
  marsadm up r0 --timeout 120
  dmesg | grep -E "mars: resource r0: (replayed|logfile)" || true
  # The data disk itself holds every acknowledged write once the log is replayed...
  $io check /dev/vda "$OUT"/journal.* || fail "acknowledged writes missing on the data disk after replay"
  marsadm primary r0
  # ...and so does the device users see.
  $io check /dev/mars/r0 "$OUT"/journal.* || fail "acknowledged writes missing on /dev/mars/r0"
fi
[ "${2:-}" = final ] && exit 0

for w in $(seq 0 $((workers - 1))); do
  $io write /dev/mars/r0 "$OUT/journal.$w" "$w" "$workers" $((round * 1000000)) "$blocks" &
done
sleep 1
touch "$OUT/writing.$round"
wait
