# Shared helpers for the scripts in this directory. Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

# Repository root, whatever directory the caller is in.
MARS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Cache for downloads and kernel builds: outside the work tree, survives clean clones.
MARS_CACHE=${MARS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mars}
export MARS_ROOT MARS_CACHE

# Tools installed by setup-host.sh live here (cargo install, pip --user).
export PATH="$HOME/.cargo/bin:$HOME/.local/bin:$PATH"
# bindgen in the kernel build needs libclang >= 17; bookworm's default is 14.
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# Needs root: the setup installs packages, the VMs use the host's root filesystem.
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and boots VMs)"; }
