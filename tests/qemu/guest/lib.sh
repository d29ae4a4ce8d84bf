# Helpers for guest scripts (run inside a test VM by init.sh). Source it.
# shellcheck shell=bash
set -euo pipefail

# Random choices of guest scripts come from the scenario's seed (run.sh prints it).
RANDOM=$(( SEED + NODE ))

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

# Makes and mounts the /mars filesystem on the node's second disk (on the host's empty /mars).
mount_mars() {
  mkfs.ext4 -q -F /dev/vdb
  mount /dev/vdb /mars
}

# Waits up to $2 seconds (default 10) until the command string $1 succeeds.
wait_for() {
  local cmd=$1 limit=${2:-10} t
  for ((t = 0; t < limit * 10; t++)); do
    if eval "$cmd" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out after ${limit}s waiting for: $cmd"
}

# Prints the value part of the tree entry KEY (the symlink /mars/KEY), without its stamp.
tree_value() { local t; t=$(readlink "/mars/$1") && echo "${t%|*}"; }
