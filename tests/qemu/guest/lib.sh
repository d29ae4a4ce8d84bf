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

# A sleep of $1 seconds without a process. Under TCG every fork and exec costs the guest
# milliseconds of CPU (which the other VMs on the host share), and the waits below poll several
# times a second: `read` on a pipe this shell holds both ends of never gets data, so it returns
# after its timeout.
exec {NAP_FD}<> <(:)
nap() { read -r -t "$1" -u "$NAP_FD" _ || true; }

# Waits up to $2 seconds (default 10, by the clock) until the command string $1 succeeds.
wait_for() {
  local cmd=$1 limit=${2:-10} end
  end=$((EPOCHSECONDS + limit + 1))
  until eval "$cmd" >/dev/null 2>&1; do
    [ "$EPOCHSECONDS" -lt "$end" ] || fail "timed out after ${limit}s waiting for: $cmd"
    nap 0.2
  done
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

# The interface and the peer's link address of the link to node $1: "IFACE PEER_IP".
link_of() {
  local link peer mac my_ip peer_ip iface
  for link in $LINKS; do
    IFS=, read -r peer mac my_ip peer_ip <<<"$link"
    [ "$peer" = "$1" ] || continue
    iface=$(grep -il "^$mac\$" /sys/class/net/*/address | awk -F/ '{print $5}' | head -1)
    echo "$iface $peer_ip"; return 0
  done
  return 1
}

# Cuts the link to node $1 on this side (the interface goes down, with its routes).
link_down() { local iface; read -r iface _ <<<"$(link_of "$1")"; ip link set "$iface" down; }

# Heals it: the interface comes up and the route to node $1's host address is restored.
link_up() {
  local iface peer_ip
  read -r iface peer_ip <<<"$(link_of "$1")"
  ip link set "$iface" up
  wait_for "ip route replace 10.78.0.$1/32 via $peer_ip src 10.78.0.$NODE" 10
}

# Creates (node 1) or joins (others, through node 1) the cluster at this node's host address;
# the secret travels through $OUT. Waits until this node is connected to node 1.
form_cluster() {
  local ip=${1:-10.78.0.$NODE} peer=${2:-10.78.0.1}
  if [ "$NODE" = 1 ]; then
    marsadm create-cluster --ip "$ip"
    cp /mars/.secret "$OUT/secret"
    mark created
  else
    wait_mark 1 240 created
    marsadm join-cluster "$peer" --ip "$ip" --secret-file "$OUT/secret"
  fi
}

# Waits until this node's tree connection to node $1 is up (at most $2 seconds, default 60).
wait_peer_up() { wait_for "peer_line node$1 | grep -q 'tree=up'" "${2:-60}"; }

# Node 1: creates resource $1 on /dev/vda with $2 bytes and marks `resource`.
create_primary() {
  marsadm create-resource "$1" /dev/vda --size "$2"
  mark resource
}

# Other nodes: waits for node 1's `resource` mark and the size key, joins $1 with /dev/vda as a
# secondary and marks `joined`.
join_secondary() {
  wait_mark 1 240 resource
  wait_for "[ -n \"\$(tree_value resource-$1/size)\" ]" 20
  marsadm join-resource "$1" /dev/vda
  mark joined
}

# The SHA-256 of the first $2 bytes (whole MiB) of device $1, read past the page cache.
device_sha() { dd if="$1" bs=1M count=$(($2 >> 20)) iflag=direct status=none | sha256sum | cut -d' ' -f1; }

# Field $2 (1 done, 2 total, 3 rate, 4 transferred) of this node's copy status of resource $1.
sync_field() { tree_value "resource-$1/actual-node$NODE/sync" | cut -d' ' -f"$2"; }

# Waits up to $2 seconds until this secondary says its copy of resource $1 is consistent.
wait_consistent() {
  wait_for "[ \"\$(tree_value resource-$1/actual-node$NODE/consistency)\" = consistent ]" "$2"
}
