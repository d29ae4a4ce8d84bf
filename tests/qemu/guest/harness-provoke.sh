# Guest side of scenarios/harness-checks.sh: provokes one kernel report with lkdtm, tells the host
# (OUT/provoked.MODE), and waits to be killed. Usage: harness-provoke.sh warn|hung
source "$MARS_ROOT/tests/qemu/guest/lib.sh"
mode=$1
modprobe lkdtm
trigger=/sys/kernel/debug/provoke-crash/DIRECT
case $mode in
  warn)
    echo WARNING >"$trigger" || true
    ;;
  hung)
    # The guests boot with hung_task_timeout_secs=30; shorten it for this one boot.
    [ "$(cat /proc/sys/kernel/hung_task_timeout_secs)" = 30 ] \
      || fail "hung_task_timeout_secs is $(cat /proc/sys/kernel/hung_task_timeout_secs), not the 30 of the boot line"
    echo 3 >/proc/sys/kernel/hung_task_timeout_secs
    echo HUNG_TASK >"$trigger" &   # never returns: the writer sleeps uninterruptibly
    wait_for "dmesg | grep -q 'blocked for more than'" 120
    ;;
  *) fail "unknown mode $mode" ;;
esac
touch "$OUT/provoked.$mode"
sleep 1000
