#!/usr/bin/env bash
# The test command (README, .ci/run): sets the host up, runs the userspace tests (cargo test over
# the workspace) and bounded fuzz runs, builds the kernel (cached) and mars.ko, and runs every VM scenario. The output
# ends with the VM suite's `N passed, N failed` line.
source "$(dirname "$0")/common.sh"
need_root

"$MARS_ROOT/scripts/setup-host.sh"

# The property tests draw from one seed per run, printed here; the same value replays them.
PROPTEST_RNG_SEED=${PROPTEST_RNG_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
export PROPTEST_RNG_SEED
log "userspace tests: cargo test --workspace (property tests: PROPTEST_RNG_SEED=$PROPTEST_RNG_SEED replays them)"
cargo_log="$MARS_LOGS/cargo-test.log"
status=0
cargo test --workspace --manifest-path "$MARS_ROOT/Cargo.toml" >"$cargo_log" 2>&1 || status=$?
grep -E '^(test result|running|error|warning)|FAILED|panicked' "$cargo_log" || true
[ "$status" -eq 0 ] || die "cargo test failed (exit $status): see $cargo_log"

log "fuzz targets, bounded"
"$MARS_ROOT/scripts/fuzz.sh"

KDIR=$("$MARS_ROOT/scripts/kernel.sh")
export KDIR
log "VM scenarios"
exec "$MARS_ROOT/tests/qemu/run.sh"
