#!/usr/bin/env bash
# Runs the VM scenarios (all of tests/qemu/scenarios/*.sh, or those named) one after another and
# ends with a line `N passed, N failed`. Each scenario has its own timeout (its `# timeout:`
# header; doubled on the debug kernel) and its VMs are always killed, whatever happens. After it,
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

for name in "${names[@]}"; do
  scenario="$HERE/scenarios/$name.sh"
  [ -f "$scenario" ] || { echo "FAIL $name: no such scenario ($scenario)"; failed=$((failed + 1)); continue; }
  limit=$(awk -F': *' '/^# timeout:/ {print $2; exit}' "$scenario")
  [ -n "$limit" ] || die "$scenario has no '# timeout: SECONDS' header"
  # The debug kernel (lockdep, KFENCE, SLUB debugging) runs 2-4x slower under TCG.
  [ "${MARS_KERNEL_VARIANT:-default}" != default ] && limit=$((limit * 2))
  out="$run_dir/$name"; mkdir -p "$out"
  seed=${MARS_SEED:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
  echo "seed $seed (replay: MARS_SEED=$seed tests/qemu/run.sh $name)" >"$out/scenario.log"
  start=$(date +%s)
  set +e
  OUT="$out" SCENARIO="$scenario" SEED="$seed" timeout --kill-after=20 "$limit" bash -c '
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
  for f in "$out"/*.pgid.*; do [ -f "$f" ] && { kill -KILL -- "-$(cat "$f")" 2>/dev/null || true; }; done
  secs=$(( $(date +%s) - start ))
  # Every boot's kernel log; logs a scenario provoked on purpose are under expected/, not here.
  if ! kernel_logs_trouble "$out"/node*.console.* "$out"/node*.dmesg "$out"/node*.kmemleak \
      2>>"$out/scenario.log"; then
    [ "$rc" -ne 0 ] || rc=125
  fi
  if [ "$rc" -eq 0 ]; then
    echo "PASS $name (${secs}s)"; passed=$((passed + 1))
  else
    reason="exit $rc"; [ "$rc" -eq 124 ] && reason="timed out after ${limit}s"
    [ "$rc" -eq 125 ] && reason="kernel trouble"
    echo "FAIL $name (${secs}s, $reason, seed $seed); log: $out/scenario.log"
    sed 's/^/    /' "$out/scenario.log" | tail -25
    failed=$((failed + 1))
  fi
  echo "$name $rc ${secs}s" >>"$run_dir/summary"
done

echo "VM suite took $(( $(date +%s) - suite_start ))s; results in $run_dir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
