# Host side of the VM harness: boots N virtme-ng nodes under TCG, links them, kills and reaps them.
# Sourced by run.sh before a scenario; a scenario calls these functions. Needs: KDIR, MARS_ROOT, OUT.
# shellcheck shell=bash

# Per-node defaults; a scenario may change them before cluster_init.
DATA_MB=${DATA_MB:-256}     # /dev/vda in the guest: the data disk
MARS_MB=${MARS_MB:-512}     # /dev/vdb in the guest: for the /mars filesystem
NODE_MEM=${NODE_MEM:-1G}
NODE_CPUS=${NODE_CPUS:-1}

NODES=0
declare -a NODE_PGID=()
declare -a NODE_BOOTS=()

# First TCP port of this run's links: distinct per runner process so stale VMs never collide.
PORT_BASE=$(( 20000 + ($$ % 2000) * 10 ))

# The port of the link between nodes i < j.
link_port() { echo $(( PORT_BASE + $1 * 4 + $2 )); }

# Creates N nodes: disks, link plan and environment files. Nothing runs yet.
cluster_init() {
  NODES=$1
  local k i j
  for ((k = 1; k <= NODES; k++)); do
    truncate -s "${DATA_MB}M" "$OUT/node$k-data.img"
    truncate -s "${MARS_MB}M" "$OUT/node$k-mars.img"
    NODE_BOOTS[k]=0
    {
      echo "NODE=$k"
      echo "NODES=$NODES"
      echo "HOST=node$k"
      echo "OUT=$OUT"
      echo "MARS_ROOT=$MARS_ROOT"
      echo "MARS_KO=$MARS_ROOT/mars.ko"
      echo "PATH=$MARS_ROOT/target/release:\$PATH"
      local links=""
      for ((i = 1; i <= NODES; i++)); do
        [ "$i" -eq "$k" ] && continue
        local lo=$(( i < k ? i : k )) hi=$(( i < k ? k : i ))
        # One /24 per link; each end's host part is its node number.
        links+="$i,$(node_mac "$k" "$i"),10.77.$((lo * 10 + hi)).$k,10.77.$((lo * 10 + hi)).$i "
      done
      echo "LINKS=\"$links\""
    } > "$OUT/node$k.env"
  done
}

# MAC address of node k's interface towards node p.
node_mac() { printf '52:54:00:77:%02x:%02x' "$1" "$2"; }

# QEMU options for node k: its two disks and one socket link per peer, all on 127.0.0.1.
node_qemu_opts() {
  local k=$1 p opts
  opts="-drive file=$OUT/node$k-data.img,if=virtio,format=raw,cache=none,aio=threads"
  opts+=" -drive file=$OUT/node$k-mars.img,if=virtio,format=raw,cache=none,aio=threads"
  for ((p = 1; p <= NODES; p++)); do
    [ "$p" -eq "$k" ] && continue
    local lo=$(( p < k ? p : k )) hi=$(( p < k ? k : p ))
    local role=connect; [ "$k" -eq "$lo" ] && role=listen
    opts+=" -device virtio-net-pci,netdev=l$p,mac=$(node_mac "$k" "$p")"
    opts+=" -netdev socket,id=l$p,$role=127.0.0.1:$(link_port "$lo" "$hi")"
  done
  echo "$opts"
}

# Boots node k running GUEST_SCRIPT [ARGS] (a path under tests/qemu/guest/) in the background.
node_start() {
  local k=$1; shift
  local boot=$(( NODE_BOOTS[k] + 1 ))
  NODE_BOOTS[k]=$boot
  rm -f "$OUT/node$k.rc"
  # Links: a node connects to lower-numbered peers, which must already listen.
  local p
  for ((p = 1; p < k; p++)); do wait_listening "$(link_port "$p" "$k")" || return 1; done
  setsid vng --run "$KDIR" --disable-kvm --name "node$k" --cpus "$NODE_CPUS" --memory "$NODE_MEM" \
    --rwdir="$OUT" --append "panic=-1 oops=panic loglevel=5 sysctl.kernel.hung_task_timeout_secs=30" \
    --qemu-opts="$(node_qemu_opts "$k")" \
    --exec "$MARS_ROOT/tests/qemu/guest/init.sh $OUT/node$k.env $*" \
    </dev/null >"$OUT/node$k.console.$boot" 2>&1 &
  NODE_PGID[k]=$!
  echo "$!" > "$OUT/node$k.pgid.$boot"
}

# Waits until a QEMU listens on 127.0.0.1:PORT (at most 30 s).
wait_listening() {
  local port=$1 t
  for ((t = 0; t < 300; t++)); do
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q LISTEN && return 0
    sleep 0.1
  done
  echo "no VM listens on port $port after 30 s" >&2
  return 1
}

# Waits for node k's VM to exit; returns the guest script's exit code (or 255 if it never wrote one).
node_wait() {
  local k=$1
  wait "${NODE_PGID[k]}" 2>/dev/null || true
  NODE_PGID[k]=""
  [ -f "$OUT/node$k.rc" ] || return 255
  return "$(cat "$OUT/node$k.rc")"
}

# Kills node k's VM like a power cut: QEMU dies, the guest gets no chance to flush or unmount.
node_kill() {
  local k=$1
  [ -n "${NODE_PGID[k]:-}" ] || return 0
  kill -KILL -- "-${NODE_PGID[k]}" 2>/dev/null || true
  wait "${NODE_PGID[k]}" 2>/dev/null || true
  NODE_PGID[k]=""
}

# Kills every VM of this scenario that still runs. run.sh calls it on every exit path.
cluster_teardown() {
  local k
  for ((k = 1; k <= NODES; k++)); do node_kill "$k"; done
}

# Fails (returns 1, with the evidence on stderr) if node k's kernel logs show an oops, a WARN,
# a BUG, a lockdep, KFENCE or kmemleak report, or if the guest never reported its result.
node_check_kernel() {
  local k=$1 f bad=0
  local pattern='BUG:|WARNING:|Oops|general protection fault|Kernel panic|KASAN|KFENCE|UBSAN|unreferenced object|possible (circular|recursive) locking|INFO: task .* blocked|rust_panic|panicked at'
  for f in "$OUT"/node"$k".console.* "$OUT/node$k.dmesg" "$OUT/node$k.kmemleak"; do
    [ -f "$f" ] || continue
    if grep -E -q "$pattern" "$f"; then
      echo "node$k: kernel trouble in $(basename "$f"):" >&2
      grep -E -A8 "$pattern" "$f" | head -40 >&2
      bad=1
    fi
  done
  return $bad
}

# Starts nodes 1..N all running GUEST_SCRIPT, waits for all, and checks each: the scenario
# passes when every guest script exits 0 and no kernel reports trouble.
cluster_run_all() {
  local n=$1 script=$2 k rc fail=0
  cluster_init "$n"
  for ((k = 1; k <= n; k++)); do node_start "$k" "$script" || return 1; done
  for ((k = 1; k <= n; k++)); do
    node_wait "$k"; rc=$?
    if [ "$rc" -ne 0 ]; then
      echo "node$k: guest script exited $rc; last lines of its log:" >&2
      tail -20 "$OUT/node$k.log" 2>/dev/null >&2 || tail -20 "$OUT/node$k.console.${NODE_BOOTS[k]}" >&2
      fail=1
    fi
    node_check_kernel "$k" || fail=1
  done
  return $fail
}
