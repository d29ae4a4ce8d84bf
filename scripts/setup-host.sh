#!/usr/bin/env bash
# Installs everything the build, the tests and the VMs need. Idempotent: a second run checks and
# returns in seconds. The VMs share the host's root filesystem read-only, so every tool a guest
# uses (fio, drbd-utils, ip, tc, mkfs) is installed here on the host.
source "$(dirname "$0")/common.sh"
need_root
setup_log="$MARS_LOGS/setup-host.log"
: >"$setup_log"

# Debian packages: kernel build, libclang for bindgen, QEMU, guest tools.
PACKAGES=(
  build-essential flex bison bc libelf-dev libssl-dev cpio kmod dwarves rsync xz-utils zstd
  libclang-19-dev
  qemu-system-x86 udev busybox-static
  fio drbd-utils iproute2 iputils-ping e2fsprogs util-linux procps psmisc kmod
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$setup_log" 2>&1 \
    || die "apt-get update failed (network? /etc/apt/sources.list.d?): see $setup_log"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$setup_log" 2>&1 \
    || die "apt-get install failed for ${missing[*]}: see $setup_log"
fi

# Rust: the kernel compiles core from source (rust-src); bindgen generates the kernel bindings.
command -v rustup >/dev/null || die "rustup not found: install Rust with rustup first"
rustup component list --installed | grep -q '^rust-src' \
  || rustup component add rust-src >>"$setup_log" 2>&1 || die "rustup component add rust-src failed: see $setup_log"
if ! bindgen --version 2>/dev/null | grep -qE 'bindgen 0\.(7[1-9]|[89][0-9])'; then
  log "installing bindgen-cli (about 70 s)"
  cargo install bindgen-cli --locked >>"$setup_log" 2>&1 || die "cargo install bindgen-cli failed: see $setup_log"
fi

# cargo-fuzz runs the fuzz targets (on stable, with RUSTC_BOOTSTRAP=1: see scripts/fuzz.sh).
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (about 70 s)"
  cargo install cargo-fuzz --locked >>"$setup_log" 2>&1 || die "cargo install cargo-fuzz failed: see $setup_log"
fi

# virtme-ng boots the VMs.
if ! command -v vng >/dev/null; then
  log "installing virtme-ng"
  { pip install 'virtme-ng==1.42' || pip install virtme-ng; } >>"$setup_log" 2>&1 \
    || die "pip install virtme-ng failed: see $setup_log"
fi

# The VMs share this root filesystem read-only, so the /mars mount point their /mars filesystem
# is mounted on must exist here (an empty directory; nothing is mounted on it on this host).
[ -d /mars ] || mkdir -m 0700 /mars

log "host ready: $(rustc --version), $(bindgen --version), vng $(vng --version 2>/dev/null | head -1)"
