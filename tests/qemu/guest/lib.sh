# Helpers for guest scripts (run inside a test VM by init.sh). Source it.
# shellcheck shell=bash
set -euo pipefail

# Stops the scenario with a message.
fail() { echo "FAIL: $*" >&2; exit 1; }

# Runs a command that must fail; its output is kept in $LAST_OUTPUT.
expect_fail() {
  if LAST_OUTPUT=$("$@" 2>&1); then fail "expected failure of: $*"; fi
  echo "failed as expected: $* -> $LAST_OUTPUT"
}

# Checks that dmesg has a line matching the extended regex $1.
expect_dmesg() { dmesg | grep -E -q -- "$1" || fail "dmesg lacks /$1/"; }

# Loads mars.ko with optional parameters and checks that it is alive.
load_mars() {
  insmod "$MARS_KO" "$@"
  [ -r /proc/mars/status ] || fail "mars.ko loaded but /proc/mars/status is missing"
}

# Unloads mars.ko and checks that its traces are gone.
unload_mars() {
  rmmod mars
  [ ! -e /proc/mars ] || fail "/proc/mars still exists after rmmod"
}
