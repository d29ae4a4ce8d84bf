# Guest side of scenarios/bad-params.sh.
source "$MARS_ROOT/tests/qemu/guest/lib.sh"

expect_fail insmod "$MARS_KO" interval_ms=5
expect_dmesg "mars: invalid parameter interval_ms=5: must be between 100 and 60000"
expect_fail insmod "$MARS_KO" port=80
expect_dmesg "mars: invalid parameter port=80: must be between 1024 and 65532"
expect_fail insmod "$MARS_KO" port=lots
expect_fail insmod "$MARS_KO" log_rotate_mb=2000000
expect_dmesg "mars: invalid parameter log_rotate_mb=2000000: must be between 0 and 1048576"
[ ! -e /proc/mars ] || fail "/proc/mars exists after failed loads"
lsmod | grep -q '^mars ' && fail "mars is loaded after failed loads"

load_mars interval_ms=250 port=9000 log_rotate_mb=0
grep -qx "interval_ms 250" /proc/mars/status || fail "interval_ms not applied"
grep -qx "log_rotate_mb 0" /proc/mars/status || fail "log_rotate_mb not applied"
grep -qx "port 9000" /proc/mars/status || fail "port not applied"
unload_mars
echo "bad parameters refused"
