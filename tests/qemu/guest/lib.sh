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

# Waits (at most $2 seconds, default 120) until every node of the scenario has reached barrier $1:
# the nodes share $OUT, each marks its arrival there.
barrier() {
  local name=$1 limit=${2:-120} k
  touch "$OUT/barrier.$name.$NODE"
  for k in $(seq 1 "$NODES"); do wait_for "[ -e '$OUT/barrier.$name.$k' ]" "$limit"; done
}

# Waits (at most $2 seconds) until node $1 has marked step $3 in $OUT with `mark STEP`.
wait_mark() { wait_for "[ -e '$OUT/mark.$3.$1' ]" "$2"; }
mark() { touch "$OUT/mark.$1.$NODE"; }

# Writes tree entry KEY = VALUE by hand (as a peer would have), stamped now by host id NODE.
put_key() {
  local key=$1 value=$2 dir
  dir=$(dirname "/mars/$key"); mkdir -p "$dir"
  ln -sfn "$value|$(date +%s.%N)@$(printf '%016x' "$NODE")" "/mars/$key"
}

# The line of peer $1 in /proc/mars/status.
peer_line() { grep "^peer $1 " /proc/mars/status; }
