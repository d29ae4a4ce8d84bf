# Shared helpers for the scripts in this directory. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

# Repository root, whatever directory the caller is in.
MARS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Per-user working directory outside the work tree. Nothing in it is assumed to exist: every
# script creates what it writes into (CI points it at a directory that does not exist yet).
MARS_CACHE=${MARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mars}
# The only thing reused between runs: content-keyed kernel builds and the Debian packages they
# come from (scripts/kernel.sh). CI keeps this one and starts everything else from nothing.
MARS_KERNEL_CACHE=${MARS_KERNEL_CACHE:-$MARS_CACHE/kernel}
# Logs of this run's stages; a failing stage names its log file here.
MARS_LOGS=${MARS_LOGS:-$MARS_CACHE/logs}
export MARS_ROOT MARS_CACHE MARS_KERNEL_CACHE MARS_LOGS

# Tools installed by setup-host.sh live here (cargo install, pip --user).
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
# bindgen in the kernel build needs libclang >= 17; bookworm's default is 14.
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

mkdir -p "$MARS_LOGS" || die "cannot create the log directory $MARS_LOGS"
[ -z "${TMPDIR:-}" ] || mkdir -p "$TMPDIR" || die "cannot create TMPDIR $TMPDIR"

# Needs root: the setup installs packages, the VMs use the host's root filesystem.
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and boots VMs)"; }
