#!/usr/bin/env bash
# Runs the VM scenarios (all of tests/qemu/scenarios/*.sh, or those named), as many at a time as
# there are VM slots (see SLOTS), and ends with a line `N passed, N failed`. Each scenario has
# its own timeout (its `# timeout:` header; doubled on the debug kernel) and its VMs are always
# killed, whatever happens. After it,
# the kernel log of every boot it made (killed ones included) is scanned: a WARN, an oops, a
# lockdep, KFENCE or kmemleak report or a hung task fails it even if its own checks passed.
# Each scenario gets a seed (printed; $RANDOM and the guests draw from it): MARS_SEED=N replays
# the harness's choices of a run. Results land in tests/qemu/out/RUN/.
#
#   tests/qemu/run.sh                   all scenarios
#   tests/qemu/run.sh load-unload link  just these
#   MARS_SEED=1234 tests/qemu/run.sh crash
source "$(dirname "$0")/../../scripts/common.sh"

HERE="$MARS_ROOT/tests/qemu"
source "$HERE/cluster.sh"   # for kernel_logs_trouble
KDIR=${KDIR:-$("$MARS_ROOT/scripts/kernel.sh")}
export KDIR
KDIR="$KDIR" "$MARS_ROOT/scripts/build-module.sh" >/dev/null

if [ $# -gt 0 ]; then names=("$@"); else
  names=(); for f in "$HERE"/scenarios/*.sh; do names+=("$(basename "$f" .sh)"); done
fi

run_dir="$HERE/out/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
ln -sfn "$run_dir" "$HERE/out/latest"
passed=0; failed=0; suite_start=$(date +%s)

# Scenarios share the host: MARS_VM_SLOTS VMs at a time (default: one more than the host has
# CPUs, since a scenario's VMs spend much of their time waiting). A scenario takes one slot per
# VM it boots (read from its `cluster_run_all N` / `cluster_init N`), at most all of them; one
# whose checks time rates or rounds says `# exclusive` and takes every slot, so the host is its
# alone. On this 2-CPU host a 2-VM scenario runs next to a 1-VM one, 1-VM ones three at a time.
SLOTS=${MARS_VM_SLOTS:-$(( $(nproc) + 1 ))}
scenario_timeout() { awk -F': *' '/^# timeout:/ {print $2; exit}' "$1"; }
scenario_vms() { grep -oE '^[^#]*cluster_(run_all|init) [0-9]+' "$1" | grep -oE '[0-9]+$' | head -1; }
# TCP ports of each scenario's links: 20 per scenario, distinct within this run and (by the
# runner's pid) unlikely to meet a stale VM of another run; all below the ephemeral range.
port_base() { echo $(( 20000 + ($$ % 20) * 600 + $1 * 20 )); }

# Runs scenario NAME (index IDX) to its end and writes "rc secs limit seed" to its result file.
run_scenario() {
  local name=$1 idx=$2 scenario="$HERE/scenarios/$1.sh" out="$run_dir/$1" limit seed start rc
  limit=$(scenario_timeout "$scenario")
  # The debug kernel (lockdep, KFENCE, SLUB debugging) runs 2-4x slower under TCG.
  [ "${MARS_KERNEL_VARIANT:-default}" != default ] && limit=$((limit * 2))
  seed=${MARS_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
  echo "seed $seed (replay: MARS_SEED=$seed tests/qemu/run.sh $name)" >"$out/scenario.log"
  start=$(date +%s)
  set +e
  OUT="$out" SCENARIO="$scenario" SEED="$seed" MARS_PORT_BASE="$(port_base "$idx")" \
    timeout --kill-after=20 "$limit" bash -c '
    set -u
    RANDOM=$SEED
    source "$MARS_ROOT/tests/qemu/cluster.sh"
    trap cluster_teardown EXIT
    trap "echo \"timed out\" >&2; exit 124" TERM
    source "$SCENARIO"
  ' >>"$out/scenario.log" 2>&1
  rc=$?
  set -e
  # Belt and braces: no VM of this scenario survives it, even after a hard timeout.
  local f
  for f in "$out"/*.pgid.*; do [ -f "$f" ] && { kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; }; done
  # Every boot's kernel log; logs a scenario provoked on purpose are under expected/, not here.
  if ! kernel_logs_trouble "$out"/node*.console.* "$out"/node*.dmesg "$out"/node*.kmemleak \
      2>>"$out/scenario.log"; then
    [ "$rc" -ne 0 ] || rc=125
  fi
  echo "$rc $(( $(date +%s) - start )) $limit $seed" >"$out/result"
}

# Prints the PASS or FAIL line of a finished scenario and counts it.
report() {
  local name=$1 out="$run_dir/$1" rc secs limit seed reason
  read -r rc secs limit seed <"$out/result" || { rc=255; secs=0; limit=0; seed=?; }
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name (${secs}s)"; passed=$((passed + 1))
  else
    reason="exit $rc"; [ "$rc" -eq 124 ] && reason="timed out after ${limit}s"
    [ "$rc" -eq 125 ] && reason="kernel trouble"
    echo "FAIL $name (${secs}s, $reason, seed $seed); log: $out/scenario.log"
    sed 's/^/    /' "$out/scenario.log" | tail -40
    failed=$((failed + 1))
  fi
  echo "$name $rc ${secs}s" >>"$run_dir/summary"
}

# Longest first (by timeout), so the long single-VM ones overlap the short ones.
pending=()
for name in "${names[@]}"; do
  scenario="$HERE/scenarios/$name.sh"
  [ -f "$scenario" ] || { echo "FAIL $name: no such scenario ($scenario)"; failed=$((failed + 1)); continue; }
  grep -qE '^# timeout: *[0-9]+' "$scenario" || die "$scenario has no '# timeout: SECONDS' header"
  pending+=("$(scenario_timeout "$scenario") $name")
done
mapfile -t pending < <(printf '%s\n' "${pending[@]}" | sort -k1,1nr -k2 | awk 'NF {print $2}')

declare -A job_name=() job_need=()
# A runner stopped from outside (Ctrl-C, a CI time limit) takes its VMs with it: each running
# scenario's `timeout` passes the signal on to the scenario, whose EXIT trap tears its VMs down;
# then whatever VM is left is killed by its process group.
stop_all() {
  trap - INT TERM
  local pid f
  for pid in "${!job_name[@]}"; do pkill -TERM -P "$pid" 2>/dev/null || true; done
  sleep 2
  for f in "$run_dir"/*/*.pgid.*; do [ -f "$f" ] && { kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; }; done
  echo "VM suite stopped from outside after $(( $(date +%s) - suite_start ))s; results in $run_dir"
  echo "$passed passed, $((failed + ${#job_name[@]} + ${#pending[@]})) failed"
  exit 143
}
trap stop_all INT TERM
free=$SLOTS; idx=0
while [ "${#pending[@]}" -gt 0 ] || [ "${#job_name[@]}" -gt 0 ]; do
  started=0
  for i in "${!pending[@]}"; do
    name=${pending[$i]}
    vms=$(scenario_vms "$HERE/scenarios/$name.sh"); vms=${vms:-1}
    need=$(( vms < SLOTS ? vms : SLOTS ))
    grep -q '^# exclusive' "$HERE/scenarios/$name.sh" && need=$SLOTS
    [ "$need" -le "$free" ] || continue
    mkdir -p "$run_dir/$name"
    run_scenario "$name" "$idx" &
    job_name[$!]=$name; job_need[$!]=$need
    free=$((free - need)); idx=$((idx + 1)); started=1
    unset 'pending[i]'
    break
  done
  pending=("${pending[@]}")
  [ "$started" = 1 ] && continue
  wait -n -p done_pid "${!job_name[@]}" || true
  report "${job_name[$done_pid]}"
  free=$((free + job_need[$done_pid]))
  unset "job_name[$done_pid]" "job_need[$done_pid]"
done

echo "VM suite took $(( $(date +%s) - suite_start ))s; results in $run_dir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
