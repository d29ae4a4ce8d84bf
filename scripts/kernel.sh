#!/usr/bin/env bash
# Fetches Debian's linux-source-7.2, configures it for MARS VMs and builds bzImage + modules into
# a cache outside the work tree. Prints the path of the built tree on stdout (and nothing else).
#
# Cache key: kernel source version + hash of the config fragments + rustc/bindgen/gcc versions.
# A warm call finds the built tree and returns in about a second, without touching the network.
#
# Environment:
#   MARS_KERNEL_VARIANT=debug   build the debug variant (lockdep, kmemleak, KFENCE), cached apart
#   MARS_KERNEL_VARIANT=kasan   build the KASAN variant with clang-19 (installed if missing)
#   MARS_KERNEL_REFRESH=1       look up the newest 7.2 patch level even if a built tree exists
source "$(dirname "$0")/common.sh"

SERIES=7.2
VARIANT=${MARS_KERNEL_VARIANT:-default}
case "$VARIANT" in default|debug|kasan) ;; *) die "MARS_KERNEL_VARIANT must be 'default', 'debug' or 'kasan', not '$VARIANT'";; esac

FRAGMENTS=("$MARS_ROOT/scripts/kernel-config.fragment")
[ "$VARIANT" = debug ] && FRAGMENTS+=("$MARS_ROOT/scripts/kernel-config-debug.fragment")
# Extra make arguments of a variant; recorded in the tree for scripts/build-module.sh.
MAKE_ARGS=()
if [ "$VARIANT" = kasan ]; then
  FRAGMENTS+=("$MARS_ROOT/scripts/kernel-config-kasan.fragment")
  MAKE_ARGS=(LLVM=-19)
  if ! command -v clang-19 >/dev/null || ! command -v ld.lld-19 >/dev/null || ! command -v llvm-ar-19 >/dev/null; then
    need_root
    log "installing clang-19, lld-19, llvm-19 for the KASAN kernel"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-19 lld-19 llvm-19 >"$MARS_LOGS/kernel-clang-install.log" 2>&1 \
      || die "cannot install clang-19/lld-19/llvm-19: see $MARS_LOGS/kernel-clang-install.log"
  fi
fi

command -v rustc >/dev/null && command -v bindgen >/dev/null && command -v vng >/dev/null \
  || die "build tools missing: run scripts/setup-host.sh first"

# Everything but the source version goes into this part of the key.
toolchain="$(rustc --version) | $(bindgen --version 2>&1 | head -1) | $(gcc --version | head -1)"
[ "$VARIANT" = kasan ] && toolchain="$toolchain | $(clang-19 --version | head -1)"
config_hash=$(cat "${FRAGMENTS[@]}" | sha256sum | cut -c1-12)
tool_hash=$(printf '%s' "$toolchain" | sha256sum | cut -c1-8)
KROOT="$MARS_KERNEL_CACHE"
mkdir -p "$KROOT"

built_tree_for() { # $1 = source version; prints the tree if it is completely built
  local t="$KROOT/linux-$1-$VARIANT-$config_hash-$tool_hash"
  [ -f "$t/.mars-built" ] && printf '%s\n' "$t"
}

# Warm path: any built tree of this series with the same fragments and toolchain.
if [ "${MARS_KERNEL_REFRESH:-0}" != 1 ]; then
  for stamp in $(ls -1d "$KROOT"/linux-"$SERIES".*-"$VARIANT-$config_hash-$tool_hash"/.mars-built 2>/dev/null | sort -V -r); do
    dirname "$stamp"; exit 0
  done
fi

# Builds bzImage and modules in a configured tree; marks it built. Make only builds what is missing,
# so this also finishes a build that was interrupted (a stopped CI run, a killed session).
build_tree() { # $1 = configured tree
  local t=$1 jobs start
  jobs=$(( $(nproc) + 1 ))
  log "building linux $version ($VARIANT) with -j$jobs: about 20 minutes on 2 cores; log: $t/.mars-build.log"
  start=$(date +%s)
  if ! make -C "$t" -j"$jobs" "${MAKE_ARGS[@]}" bzImage modules >"$t/.mars-build.log" 2>&1; then
    df -Pm "$KROOT" | awk 'NR==2 && $4 < 1024 {print "disk full under '"$KROOT"'"}' >&2
    tail -30 "$t/.mars-build.log" >&2
    return 1
  fi
  log "kernel built in $(( $(date +%s) - start )) s"
  touch "$t/.mars-built"
}

# --- Find the newest linux-source-7.2 through a private apt configuration -----------------------
# The system's apt sources stay untouched: sid/trixie-backports only ever appear in our own list.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
APTD="$KROOT/apt"
mkdir -p "$APTD/lists/partial" "$APTD/cache/archives/partial" "$KROOT/debs"
cat > "$APTD/sources.list" <<LIST
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie-backports main
LIST
APT_OPTS=(-o "Dir::Etc::sourcelist=$APTD/sources.list" -o Dir::Etc::sourceparts=-
          -o "Dir::State::Lists=$APTD/lists" -o "Dir::Cache=$APTD/cache" -o APT::Get::List-Cleanup=0)
log "updating the private package index (sid, trixie-backports) from $mirror"
if ! apt-get "${APT_OPTS[@]}" update -qq >"$APTD/update.log" 2>&1; then
  ls "$APTD"/lists/*Packages* >/dev/null 2>&1 \
    || die "cannot reach $mirror (see $APTD/update.log): the network is needed for the first kernel build"
  log "warning: index update failed, using the index from an earlier run"
fi
version=$(apt-cache "${APT_OPTS[@]}" madison "linux-source-$SERIES" 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -V | tail -1)
[ -n "$version" ] || die "linux-source-$SERIES is in neither sid nor trixie-backports any more: pick a new series in scripts/kernel.sh (SERIES) and re-check docs/testing.md"
log "newest linux-source-$SERIES: $version"
if tree=$(built_tree_for "$version"); then echo "$tree"; exit 0; fi
# A tree whose configuration completed (.mars-make-args is written last) but whose build did not:
# finish it. Should that fail (say, an object file cut short by a kill), start from a fresh tree.
tree="$KROOT/linux-$version-$VARIANT-$config_hash-$tool_hash"
if [ -f "$tree/.mars-make-args" ] && [ -f "$tree/.config" ]; then
  log "finishing the interrupted build in $tree"
  if build_tree "$tree"; then echo "$tree"; exit 0; fi
  log "finishing it failed: building from a fresh tree"
fi

# --- Download and unpack ------------------------------------------------------------------------
need_mb=$((20 * 1024))
avail_mb=$(df -Pm "$KROOT" | awk 'NR==2 {print $4}')
[ "$avail_mb" -ge "$need_mb" ] || die "only ${avail_mb} MB free under $KROOT; a kernel build needs about ${need_mb} MB: free space or set MARS_KERNEL_CACHE"
deb=$(ls "$KROOT/debs/linux-source-${SERIES}_${version}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  log "downloading linux-source-$SERIES=$version (about 164 MB)"
  (cd "$KROOT/debs" && apt-get "${APT_OPTS[@]}" download -qq "linux-source-$SERIES=$version") \
    || die "download of linux-source-$SERIES=$version failed (network?)"
  deb=$(ls "$KROOT/debs/linux-source-${SERIES}_"*.deb | head -1)
fi
rm -rf "$tree" "$tree.unpack"
mkdir -p "$tree.unpack"
log "unpacking $(basename "$deb")"
dpkg -x "$deb" "$tree.unpack"
tarball=$(ls "$tree.unpack"/usr/src/linux-source-*.tar.* | head -1)
mkdir -p "$tree"
tar -xf "$tarball" -C "$tree" --strip-components=1
rm -rf "$tree.unpack"

# --- Configure: virtme-ng's minimal VM config plus our fragments ----------------------------------
items=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) items+=(--configitem "$line") ;;
    "# CONFIG_"*" is not set") o=${line#\# }; items+=(--configitem "${o%% *}=n") ;;
  esac
done < <(cat "${FRAGMENTS[@]}")
log "configuring (vng --kconfig + ${#items[@]} fragment items / 2)"
# Make variables in the environment reach every make that vng runs (LLVM=-19 for kasan).
(cd "$tree" && env "${MAKE_ARGS[@]}" vng --kconfig "${items[@]}" >"$tree/.mars-config.log" 2>&1) \
  || die "vng --kconfig failed: see $tree/.mars-config.log"
# vng appends its own generic options after ours (DEBUG_INFO among them): set ours once more and
# let Kconfig resolve the rest, so that the fragments have the last word.
cfg_args=()
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=y) o=${line%%=*}; cfg_args+=(--enable "${o#CONFIG_}") ;;
    CONFIG_*=m) o=${line%%=*}; cfg_args+=(--module "${o#CONFIG_}") ;;
    CONFIG_*=*) o=${line%%=*}; cfg_args+=(--set-val "${o#CONFIG_}" "${line#*=}") ;;
    "# CONFIG_"*" is not set") o=${line#\# CONFIG_}; cfg_args+=(--disable "${o%% *}") ;;
  esac
done < <(cat "${FRAGMENTS[@]}")
(cd "$tree" && scripts/config --file .config "${cfg_args[@]}" && make "${MAKE_ARGS[@]}" olddefconfig) \
  >>"$tree/.mars-config.log" 2>&1 || die "applying the fragments failed: see $tree/.mars-config.log"
# Every option the fragments ask for must have survived dependency resolution.
while IFS= read -r line; do
  case "$line" in
    CONFIG_*=*) grep -qx -- "$line" "$tree/.config" \
      || die "$line did not stick in $tree/.config (a missing dependency?); for RUST try: make -C $tree rustavailable" ;;
  esac
done < <(cat "${FRAGMENTS[@]}")
printf '%s\n' "$toolchain" > "$tree/.mars-toolchain"
printf '%s\n' "${MAKE_ARGS[*]}" > "$tree/.mars-make-args"

# --- Build ---------------------------------------------------------------------------------------
build_tree "$tree" || die "kernel build failed: see $tree/.mars-build.log"
echo "$tree"
