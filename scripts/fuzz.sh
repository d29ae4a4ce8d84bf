#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (FUZZ_SECONDS each, default 20), starting from
# the corpora in fuzz/corpus/. cargo-fuzz needs nightly flags; the stable toolchain accepts them
# with RUSTC_BOOTSTRAP=1 (the only toolchain this machine has). A crash fails the run and leaves
# its input in fuzz/artifacts/TARGET/. Each run prints libFuzzer's seed; FUZZ_SEED=N replays it.
#   scripts/fuzz.sh [TARGET...]
source "$(dirname "$0")/common.sh"
export RUSTC_BOOTSTRAP=1
seconds=${FUZZ_SECONDS:-20}
cd "$MARS_ROOT/fuzz"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log "fuzzing $t for ${seconds}s"
  if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -print_final_stats=0 -seed="${FUZZ_SEED:-0}" \
      >"$MARS_LOGS/fuzz-$t.log" 2>&1; then
    tail -30 "$MARS_LOGS/fuzz-$t.log" >&2
    seed=$(grep -m1 -oE 'Seed: [0-9]+' "$MARS_LOGS/fuzz-$t.log" | cut -d' ' -f2 || true)
    die "fuzz target $t failed (FUZZ_SEED=${seed:-?} replays the run): see $MARS_LOGS/fuzz-$t.log and fuzz/artifacts/$t/"
  fi
  seed=$(grep -m1 -oE 'Seed: [0-9]+' "$MARS_LOGS/fuzz-$t.log" | cut -d' ' -f2)
  echo "fuzz $t: seed $seed (FUZZ_SEED=$seed replays it): $(grep -E '^Done [0-9]+ runs' "$MARS_LOGS/fuzz-$t.log" | tail -1)"
done
