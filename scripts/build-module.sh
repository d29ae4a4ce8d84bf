#!/usr/bin/env bash
# Builds mars.ko against the cached kernel tree and marsadm (release). Prints the path of mars.ko.
# KDIR may be given to skip the kernel lookup.
source "$(dirname "$0")/common.sh"

KDIR=${KDIR:-$("$MARS_ROOT/scripts/kernel.sh")}
# The compiler the tree was built with (LLVM=-19 for the KASAN variant), as scripts/kernel.sh
# recorded it.
read -r -a make_args < <(cat "$KDIR/.mars-make-args" 2>/dev/null || true) || true
log "building mars.ko against $KDIR"
make -C "$KDIR" M="$MARS_ROOT" CONFIG_MARS=m "${make_args[@]}" modules >"$MARS_LOGS/module-build.log" 2>&1 || {
  grep -E -B2 -A12 'error(\[|:)' "$MARS_LOGS/module-build.log" | head -80 >&2
  die "mars.ko build failed: see $MARS_LOGS/module-build.log"
}
log "building marsadm"
cargo build --quiet --release -p marsadm --manifest-path "$MARS_ROOT/Cargo.toml" >&2 \
  || die "marsadm build failed"
echo "$MARS_ROOT/mars.ko"
