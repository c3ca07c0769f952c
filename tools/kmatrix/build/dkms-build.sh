# Evaluates a DKMS tree's dkms.conf for one kernel, and in "build" mode builds it, the way DKMS
# 3.x does (see dkms.ts for what is honoured and how it differs). Runs inside the toolchain
# container with the sources in /build/src; the built modules go to /build/src/.kmatrix-out/.
# Arguments: mode (eval|build) kernelver kernel_source_dir arch; KMATRIX_JOBS in the environment
# is make's -j (it never changes the bytes, so it is not part of the command a build records).
# Everything dkms.conf set is printed first, one `kmatrix-dkms-var NAME INDEX BASE64` line per
# value, so the caller reads exactly what this evaluation said (names with spaces, newlines and
# all) instead of parsing bash.
set -euo pipefail
mode="$1"; kernelver="$2"; kernel_source_dir="$3"; arch="$4"; jobs="${KMATRIX_JOBS:-1}"
# DKMS builds in $dkms_tree/<name>/<version>/build, and some dkms.conf files name that path in
# MAKE: it is a link to the sources (the container's /tmp is writable; /var/lib/dkms is not).
dkms_tree=/tmp/dkms; source_tree=/usr/src; install_tree=/lib/modules
export kernelver kernel_source_dir arch dkms_tree source_tree
cd /build/src

emit() { printf 'kmatrix-dkms-var %s %s %s\n' "$1" "$2" "$(printf '%s' "$3" | base64 -w0)"; }

# dkms.conf is a bash fragment written for DKMS, which sources it without -e or -u: a failing
# test or an unset variable in it is not an error.
set +eu
. ./dkms.conf
set -eu

for v in PACKAGE_NAME PACKAGE_VERSION PRE_BUILD POST_BUILD BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH \
  BUILD_EXCLUSIVE_CONFIG BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX; do
  if [ -n "${!v+set}" ]; then emit "$v" - "${!v}"; fi
done
for a in BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME DEST_MODULE_LOCATION STRIP MAKE MAKE_MATCH PATCH PATCH_MATCH; do
  eval "indexes=(\"\${!$a[@]}\")"
  for i in "${indexes[@]}"; do eval "value=\${$a[$i]}"; emit "$a" "$i" "$value"; done
done
[ "$mode" = build ] || exit 0

skip() { echo "kmatrix-dkms-skip: $*"; exit 0; }
# Upstream DKMS's version order for BUILD_EXCLUSIVE_KERNEL_MIN/_MAX: numbers padded to 3 digits,
# then compared as strings.
ver() {
  local s="$1" out=""
  while [[ $s =~ ^([^0-9]*)([0-9]+)(.*)$ ]]; do
    out+="${BASH_REMATCH[1]}$(printf '%03d' "$((10#${BASH_REMATCH[2]}))")"; s="${BASH_REMATCH[3]}"
  done
  printf '%s' "$out$s"
}
if [ -n "${BUILD_EXCLUSIVE_KERNEL:-}" ] && ! [[ "$kernelver" =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
  skip "BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
fi
if [ -n "${BUILD_EXCLUSIVE_KERNEL_MIN:-}" ] && [[ "$(ver "$kernelver")" < "$(ver "$BUILD_EXCLUSIVE_KERNEL_MIN")" ]]; then
  skip "BUILD_EXCLUSIVE_KERNEL_MIN=\"$BUILD_EXCLUSIVE_KERNEL_MIN\": $kernelver is older"
fi
if [ -n "${BUILD_EXCLUSIVE_KERNEL_MAX:-}" ] && [[ "$(ver "$kernelver")" > "$(ver "$BUILD_EXCLUSIVE_KERNEL_MAX")" ]]; then
  skip "BUILD_EXCLUSIVE_KERNEL_MAX=\"$BUILD_EXCLUSIVE_KERNEL_MAX\": $kernelver is newer"
fi
if [ -n "${BUILD_EXCLUSIVE_ARCH:-}" ] && ! [[ "$arch" =~ $BUILD_EXCLUSIVE_ARCH ]]; then
  skip "BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch"
fi
for want in ${BUILD_EXCLUSIVE_CONFIG:-}; do
  if [ "${want#!}" != "$want" ]; then
    if grep -qE "^${want#!}=[ym]" "$kernel_source_dir/.config"; then skip "BUILD_EXCLUSIVE_CONFIG: ${want#!} is set in this kernel"; fi
  else
    grep -qE "^$want=[ym]" "$kernel_source_dir/.config" || skip "BUILD_EXCLUSIVE_CONFIG: $want is not set in this kernel"
  fi
done

build="$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"
mkdir -p "$(dirname "$build")"
ln -sfn /build/src "$build"
cd "$build"

# PATCH[i] applies when PATCH_MATCH[i] is empty or matches the kernel (bash regex), in index order.
for i in ${PATCH[@]+"${!PATCH[@]}"}; do
  p="${PATCH[$i]}"
  [ -n "$p" ] || continue
  if [ -n "${PATCH_MATCH[$i]:-}" ] && ! [[ "$kernelver" =~ ${PATCH_MATCH[$i]} ]]; then
    echo "not applying patches/$p: PATCH_MATCH[$i]=\"${PATCH_MATCH[$i]}\" does not match $kernelver"
    continue
  fi
  echo "applying patches/$p"
  patch -p1 --forward < "patches/$p"
done

# PRE_BUILD/POST_BUILD: a script of the tree, word-split into its arguments, run from the build
# folder. Unlike DKMS 3.0 (which only warns), a script that fails fails the build.
run_script() {
  local what="$1" script="$2"
  [ -n "$script" ] || return 0
  local run="$build/$script"
  [ -x "${run%% *}" ] || { echo "error: the $what script ${script%% *} is not executable"; return 1; }
  echo "running the $what script: $script"
  ( cd "$build" && exec $run )
}
run_script PRE_BUILD "${PRE_BUILD:-}"

# MAKE[0] unless MAKE_MATCH[0] is set; then the last MAKE[i] whose MAKE_MATCH[i] matches the kernel.
cmd=""
[ -n "${MAKE_MATCH[0]:-}" ] || cmd="${MAKE[0]:-}"
for i in ${MAKE[@]+"${!MAKE[@]}"}; do
  if [ -n "${MAKE[$i]}" ] && [ -n "${MAKE_MATCH[$i]:-}" ] && [[ "$kernelver" =~ ${MAKE_MATCH[$i]} ]]; then cmd="${MAKE[$i]}"; fi
done
[ -n "$cmd" ] || cmd="make -C $kernel_source_dir M=$build"
# As DKMS does: a command that starts with `make` gets the build's share of the CPUs and the kernel.
cmd="${cmd/#make/make -j$jobs KERNELRELEASE=$kernelver}"
echo "+ $cmd"
eval "$cmd"

run_script POST_BUILD "${POST_BUILD:-}"

# Each module as DKMS takes it (one record per index up to the longest of the four module arrays;
# a lone record without a name is PACKAGE_NAME): BUILT_MODULE_LOCATION[i]/BUILT_MODULE_NAME[i].ko,
# stripped of debug info unless STRIP[i] (default STRIP[0], default yes) says no, stored as
# DEST_MODULE_NAME[i].ko. dkms.ts validates the same records before it reads any file.
out=/build/src/.kmatrix-out
rm -rf "$out"; mkdir "$out"
records=0
for a in BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME DEST_MODULE_LOCATION; do
  eval "n=\${$a[@]+\${#$a[@]}}"; n="${n:-0}"
  [ "$n" -le "$records" ] || records="$n"
done
[ "$records" -gt 0 ] || records=1
for ((i = 0; i < records; i++)); do
  name="${BUILT_MODULE_NAME[$i]:-}"
  [ -n "$name" ] || [ "$records" -ne 1 ] || name="$PACKAGE_NAME"
  location="${BUILT_MODULE_LOCATION[$i]:-}"
  [ -z "$location" ] || location="${location%/}/"
  dest="${DEST_MODULE_NAME[$i]:-$name}"
  case "$name/$location/$dest" in *..*|/*) echo "error: module record $i names a path outside the tree"; exit 1 ;; esac
  built="$location$name.ko"
  if [ -z "$name" ] || [ ! -f "$built" ]; then
    echo "error: Build of $name.ko failed: BUILT_MODULE_LOCATION[$i]/BUILT_MODULE_NAME[$i] = $built does not exist after the build"
    exit 1
  fi
  cp "$built" "$out/$dest.ko"
  strip="${STRIP[$i]:-${STRIP[0]:-yes}}"
  case "$strip" in [nN]*) ;; *) "${CROSS_COMPILE:-}strip" -g "$out/$dest.ko" ;; esac
done
