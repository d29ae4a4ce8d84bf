# Host side of the VM harness: boots N virtme-ng nodes under TCG, links them, kills and reaps them.
# Sourced by run.sh before a scenario; a scenario calls these functions. Needs: KDIR, MARS_ROOT,
# OUT, SEED (run.sh sets it and seeds $RANDOM with it).
# shellcheck shell=bash

# Per-node defaults; a scenario may change them before cluster_init.
DATA_MB=${DATA_MB:-256}     # /dev/vda in the guest: the data disk
MARS_MB=${MARS_MB:-512}     # /dev/vdb in the guest: for the /mars filesystem
EXTRA_MB=${EXTRA_MB:-0}     # /dev/vdc in the guest if not 0: a second data disk
NODE_MEM=${NODE_MEM:-1G}
NODE_CPUS=${NODE_CPUS:-1}
# NODE_PIN=1: node k's QEMU runs on host CPU k-1 only (benchmarks: hosts that share no CPU).
NODE_PIN=${NODE_PIN:-0}
# VOLATILE=1: the disks get a volatile write cache (tests/qemu/volatile_disk.py) that a power
# cut (node_kill) loses, except for each cached write's chance VOLATILE_KEEP of having reached
# the disk. Otherwise they are image files that keep every write QEMU made.
VOLATILE=${VOLATILE:-0}
VOLATILE_KEEP=${VOLATILE_KEEP:-0.5}
# The kernel log of every boot, as it is written (the guest console at loglevel 7), goes to
# nodeK.console.B; every file matching this is scanned after the scenario (run.sh).
KERNEL_TROUBLE='BUG:|WARNING:|Oops|general protection fault|Kernel panic|KASAN|KFENCE|UBSAN|unreferenced object|possible (circular|recursive) locking|INFO: task .* blocked|rust_panic|panicked at'

NODES=0
declare -a NODE_PGID=()
declare -a NODE_BOOTS=()

# First TCP port of this run's links: distinct per runner process so stale VMs never collide.
PORT_BASE=${MARS_PORT_BASE:-$(( 20000 + ($$ % 2000) * 10 ))}

# The port of the link between nodes i < j.
link_port() { echo $(( PORT_BASE + $1 * 4 + $2 )); }

# Creates N nodes: disks, link plan and environment files. Nothing runs yet.
cluster_init() {
  NODES=$1
  local k i j
  for ((k = 1; k <= NODES; k++)); do
    truncate -s "${DATA_MB}M" "$OUT/node$k-data.img"
    truncate -s "${MARS_MB}M" "$OUT/node$k-mars.img"
    [ "$EXTRA_MB" -eq 0 ] || truncate -s "${EXTRA_MB}M" "$OUT/node$k-extra.img"
    NODE_BOOTS[k]=0
    {
      echo "NODE=$k"
      echo "NODES=$NODES"
      echo "HOST=node$k"
      echo "SEED=$SEED"
      echo "OUT=$OUT"
      echo "MARS_ROOT=$MARS_ROOT"
      echo "MARS_KO=$MARS_ROOT/mars.ko"
      echo "PATH=$MARS_ROOT/target/release:\$PATH"
      # How much longer waits for bulk work may take on the slower kernel variants (KASAN, debug).
      if [ "${MARS_KERNEL_VARIANT:-default}" = default ]; then echo "SLOW=1"; else echo "SLOW=4"; fi
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
  [ "$VOLATILE" = 1 ] && volatile_start
  return 0
}

# Starts the volatile-cache disk server for every node's images (VOLATILE=1).
volatile_start() {
  VOLATILE_SOCK=$(mktemp -u "${TMPDIR:-/tmp}/mars-vd.XXXXXX")
  setsid python3 "$MARS_ROOT/tests/qemu/volatile_disk.py" "$VOLATILE_SOCK" "$SEED" "$VOLATILE_KEEP" \
    "$OUT"/node*.img </dev/null >>"$OUT/volatile_disk.log" 2>&1 &
  VOLATILE_PID=$!
  echo "$VOLATILE_PID" >"$OUT/volatile_disk.pgid.0"
  local t
  for ((t = 0; t < 100; t++)); do [ -S "$VOLATILE_SOCK" ] && return 0; sleep 0.1; done
  echo "volatile_disk.py did not start; its log:" >&2; cat "$OUT/volatile_disk.log" >&2
  return 1
}

# QEMU option for one disk image of node k: a file, or an export of the volatile-cache server.
node_drive() {
  local img=$1
  if [ "$VOLATILE" = 1 ]; then
    echo "-drive file=nbd+unix:///$img?socket=$VOLATILE_SOCK,if=virtio,format=raw,cache=writeback"
  else
    echo "-drive file=$OUT/$img,if=virtio,format=raw,cache=none,aio=threads"
  fi
}

# MAC address of node k's interface towards node p.
node_mac() { printf '52:54:00:77:%02x:%02x' "$1" "$2"; }

# QEMU options for node k: its two disks and one socket link per peer, all on 127.0.0.1.
node_qemu_opts() {
  local k=$1 p opts
  opts="$(node_drive "node$k-data.img") $(node_drive "node$k-mars.img")"
  [ "$EXTRA_MB" -eq 0 ] || opts+=" $(node_drive "node$k-extra.img")"
  for ((p = 1; p <= NODES; p++)); do
    [ "$p" -eq "$k" ] && continue
    local lo=$(( p < k ? p : k )) hi=$(( p < k ? k : p ))
    local role=connect; [ "$k" -eq "$lo" ] && role=listen
    opts+=" -device virtio-net-pci,netdev=l$p,mac=$(node_mac "$k" "$p")"
    opts+=" -netdev socket,id=l$p,$role=127.0.0.1:$(link_port "$lo" "$hi")"
  done
  echo "$opts"
}

# Extra kernel parameters of the variant. KASAN: 4-level paging (`no5lvl`). Under TCG the guest
# CPU offers LA57, and the KASAN kernel then takes an interrupt during identify_cpu whose
# spinlock lies in the 5-level direct map (0xff11...) before KASAN's shadow covers it: "BUG: KASAN:
# wild-memory-access in _raw_spin_lock" at 0.004 s, before any module loads.
guest_append() {
  case "${MARS_KERNEL_VARIANT:-default}" in
    kasan) echo "no5lvl" ;;
    *) echo "" ;;
  esac
}

# Boots node k running GUEST_SCRIPT [ARGS] (a path under tests/qemu/guest/) in the background.
# `no_timer_check`: under TCG on a loaded host the boot-time check of the IO-APIC timer can miss
# its ticks and panic ("IO-APIC + timer doesn't work!", seen once in hostile-peer's node3); the
# emulated timer works, only the check's timing does not.
node_start() {
  local k=$1; shift
  local boot=$(( NODE_BOOTS[k] + 1 ))
  NODE_BOOTS[k]=$boot
  rm -f "$OUT/node$k.rc"
  # Links: a node connects to lower-numbered peers, which must already listen.
  local p
  for ((p = 1; p < k; p++)); do wait_listening "$(link_port "$p" "$k")" || return 1; done
  # --verbose sends the kernel console (the whole log, loglevel 7) to vng's stderr, that is into
  # nodeK.console.B as it is written, so a boot that is killed or panics leaves its log too.
  # udev in the guest runs only our one rule (tests/qemu/udev/README.md). --force-9p: without it
  # vng first waits about 6 s for a virtiofsd this host does not have, then falls back to 9p.
  local pin=()
  [ "$NODE_PIN" = 1 ] && pin=(taskset -c $(( (k - 1) % $(nproc) )))
  setsid "${pin[@]}" vng --run "$KDIR" --disable-kvm --force-9p --verbose --name "node$k" --cpus "$NODE_CPUS" --memory "$NODE_MEM" \
    --rwdir="$OUT" --rodir="/usr/lib/udev/rules.d=$MARS_ROOT/tests/qemu/udev" --append "panic=-1 oops=panic no_timer_check sysctl.kernel.hung_task_timeout_secs=30 $(guest_append)" \
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

# Kills every VM of this scenario that still runs, then the volatile-disk server. run.sh calls it
# on every exit path.
cluster_teardown() {
  local k
  for ((k = 1; k <= NODES; k++)); do node_kill "$k"; done
  if [ -n "${VOLATILE_PID:-}" ]; then
    kill -TERM -- "-$VOLATILE_PID" 2>/dev/null || true
    wait "$VOLATILE_PID" 2>/dev/null || true
    VOLATILE_PID=""
  fi
}

# Fails (returns 1, with the evidence on stderr) if any of the given kernel logs (consoles of
# every boot, dmesg, kmemleak) shows an oops, a WARN, a BUG, a lockdep, KFENCE or kmemleak
# report, a hung task or a Rust panic.
kernel_logs_trouble() {
  local f bad=0
  for f in "$@"; do
    [ -f "$f" ] || continue
    if grep -E -q "$KERNEL_TROUBLE" "$f"; then
      echo "kernel trouble in $f:" >&2
      grep -E -A8 "$KERNEL_TROUBLE" "$f" | head -40 >&2
      bad=1
    fi
  done
  return $bad
}

# The same for every kernel log of node k so far.
node_check_kernel() {
  kernel_logs_trouble "$OUT"/node"$1".console.* "$OUT/node$1.dmesg" "$OUT/node$1.kmemleak"
}

# Starts nodes 1..N all running GUEST_SCRIPT and waits for all: the scenario passes when every
# guest script exits 0 (and, as for every scenario, run.sh finds no trouble in the kernel logs).
cluster_run_all() {
  local n=$1 script=$2 k rc fail=0
  cluster_init "$n"
  for ((k = 1; k <= n; k++)); do node_start "$k" "$script" || return 1; done
  # A node whose script failed ends the scenario at once: the others would only wait out their
  # timeouts for its marks. It gets a few seconds to power down and leave its logs.
  local running=1 failed_node=0
  while [ "$running" = 1 ] && [ "$failed_node" = 0 ]; do
    running=0
    for ((k = 1; k <= n; k++)); do
      if [ -f "$OUT/node$k.rc" ] && [ "$(cat "$OUT/node$k.rc")" != 0 ]; then failed_node=$k; fi
      kill -0 "${NODE_PGID[k]}" 2>/dev/null && running=1
    done
    [ "$running" = 1 ] && sleep 1
  done
  if [ "$failed_node" != 0 ]; then
    echo "node$failed_node failed: stopping the other nodes" >&2
    sleep 5
    for ((k = 1; k <= n; k++)); do [ -f "$OUT/node$k.rc" ] || node_kill "$k"; done
  fi
  for ((k = 1; k <= n; k++)); do
    node_wait "$k"; rc=$?
    if [ "$rc" -ne 0 ]; then
      echo "node$k: guest script exited $rc; last lines of its log:" >&2
      { [ -s "$OUT/node$k.log" ] && tail -12 "$OUT/node$k.log"; } >&2 || tail -12 "$OUT/node$k.console.${NODE_BOOTS[k]}" >&2
      fail=1
    fi
  done
  return $fail
}
