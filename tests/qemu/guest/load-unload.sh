# Guest side of scenarios/load-unload.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

for i in $(seq 1 20); do
  load_mars
  grep -q "^version " /proc/mars/status || fail "round $i: no version in /proc/mars/status"
  grep -qx "host $HOST" /proc/mars/status || fail "round $i: wrong host in /proc/mars/status"
  marsadm view | grep -q "loaded" || fail "round $i: marsadm view does not see the module"
  [ "$(marsadm view --json | grep -c '"resources": 0')" -eq 1 ] || fail "round $i: marsadm view --json"
  unload_mars
done
expect_fail marsadm view
echo "$LAST_OUTPUT" | grep -q "mars.ko is not loaded" || fail "marsadm does not say the module is missing"
[ "$(dmesg | grep -c 'MARS .* loaded on host')" -eq 20 ] || fail "expected 20 load messages"
echo "20 load/unload rounds done"
