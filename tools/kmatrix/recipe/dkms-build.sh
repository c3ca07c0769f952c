# Evaluates a DKMS tree's dkms.conf for one kernel, and in "build" mode builds it, the way DKMS
# 3.x does (see dkms.ts for what is honoured and how it differs). Runs inside the toolchain
# container with the sources in /build/src; the built modules go to /build/src/.kmatrix-out/.
# Arguments: mode (eval|build) kernelver kernel_source_dir arch; KMATRIX_JOBS in the environment
# is make's -j (it never changes the bytes, so it is not part of the command a build records).
#
# What the caller trusts is printed before any code of the driver's has run in this shell: one
# `kmatrix-dkms-var NAME INDEX BASE64` line per value dkms.conf set (names with spaces, newlines
# and all, instead of parsing bash), then either a skip line or `kmatrix-dkms-build`. Everything
# after that line comes from the driver's own build and is only logged.
set -euo pipefail
__kmx_mode="$1"; kernelver="$2"; kernel_source_dir="$3"; arch="$4"; __kmx_jobs="${KMATRIX_JOBS:-1}"
# DKMS builds in $dkms_tree/<name>/<version>/build, and some dkms.conf files name that path in
# MAKE: it is a link to the sources (the container's /tmp is writable; /var/lib/dkms is not).
dkms_tree=/tmp/dkms; source_tree=/usr/src; install_tree=/lib/modules
export kernelver kernel_source_dir arch dkms_tree source_tree
cd /build/src

__kmx_scalars="PACKAGE_NAME PACKAGE_VERSION PRE_BUILD POST_BUILD BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH BUILD_EXCLUSIVE_CONFIG BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX"
__kmx_arrays="BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME DEST_MODULE_LOCATION STRIP MAKE MAKE_MATCH PATCH PATCH_MATCH"
__kmx_vars=/tmp/kmatrix-dkms-vars
__kmx_said=/tmp/kmatrix-dkms-conf.out

# As DKMS's safe_source does: dkms.conf is sourced in a subshell, and only the values of the
# variables DKMS reads come back, as data. Its functions, traps, options, IFS and PATH die with the
# subshell, and what it prints is shown prefixed, so nothing it does can pass for our own lines.
# DKMS sources it without -e or -u: a failing test or an unset variable in it is not an error.
__kmx_status=0
(
  set +eu
  . ./dkms.conf
  # Whatever it did to word splitting or globbing, or to the lists, the values are read as DKMS reads them.
  IFS=$' \t\n'; set +f
  __kmx_scalars="PACKAGE_NAME PACKAGE_VERSION PRE_BUILD POST_BUILD BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH BUILD_EXCLUSIVE_CONFIG BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX"
  __kmx_arrays="BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME DEST_MODULE_LOCATION STRIP MAKE MAKE_MATCH PATCH PATCH_MATCH"
  for __kmx_v in $__kmx_scalars; do
    if [ -n "${!__kmx_v+set}" ]; then printf 'kmatrix-dkms-var %s - %s\n' "$__kmx_v" "$(printf '%s' "${!__kmx_v}" | base64 -w0)" >&3; fi
  done
  for __kmx_a in $__kmx_arrays; do
    eval "__kmx_indexes=(\"\${!$__kmx_a[@]}\")"
    for __kmx_i in "${__kmx_indexes[@]}"; do
      eval "__kmx_value=\${$__kmx_a[$__kmx_i]}"
      printf 'kmatrix-dkms-var %s %s %s\n' "$__kmx_a" "$__kmx_i" "$(printf '%s' "$__kmx_value" | base64 -w0)" >&3
    done
  done
) 3>"$__kmx_vars" >"$__kmx_said" 2>&1 || __kmx_status=$?
sed 's/^/dkms.conf: /' "$__kmx_said" >&2
[ "$__kmx_status" -eq 0 ] || exit "$__kmx_status"
grep '^kmatrix-dkms-var [A-Z_]* [-0-9]* [A-Za-z0-9+/=]*$' "$__kmx_vars" || true
# The same values, back in this shell: a known name, an index of digits, a decoded value.
while read -r __kmx_k __kmx_n __kmx_i __kmx_b; do
  [ "$__kmx_k" = kmatrix-dkms-var ] || continue
  case " $__kmx_scalars $__kmx_arrays " in *" $__kmx_n "*) ;; *) continue ;; esac
  __kmx_value="$(printf '%s' "$__kmx_b" | base64 -d 2>/dev/null)" || continue
  if [ "$__kmx_i" = - ]; then printf -v "$__kmx_n" '%s' "$__kmx_value"
  elif [[ $__kmx_i =~ ^[0-9]+$ ]]; then eval "$__kmx_n[$__kmx_i]=\$__kmx_value"; fi
done <"$__kmx_vars"
[ "$__kmx_mode" = build ] || exit 0

__kmx_skip() { echo "kmatrix-dkms-skip: $*"; exit 0; }
# Upstream DKMS's version order for BUILD_EXCLUSIVE_KERNEL_MIN/_MAX: numbers padded to 3 digits,
# then compared as strings.
__kmx_ver() {
  local s="$1" out=""
  while [[ $s =~ ^([^0-9]*)([0-9]+)(.*)$ ]]; do
    out+="${BASH_REMATCH[1]}$(printf '%03d' "$((10#${BASH_REMATCH[2]}))")"; s="${BASH_REMATCH[3]}"
  done
  printf '%s' "$out$s"
}
if [ -n "${BUILD_EXCLUSIVE_KERNEL:-}" ] && ! [[ "$kernelver" =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
  __kmx_skip "BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
fi
if [ -n "${BUILD_EXCLUSIVE_KERNEL_MIN:-}" ] && [[ "$(__kmx_ver "$kernelver")" < "$(__kmx_ver "$BUILD_EXCLUSIVE_KERNEL_MIN")" ]]; then
  __kmx_skip "BUILD_EXCLUSIVE_KERNEL_MIN=\"$BUILD_EXCLUSIVE_KERNEL_MIN\": $kernelver is older"
fi
if [ -n "${BUILD_EXCLUSIVE_KERNEL_MAX:-}" ] && [[ "$(__kmx_ver "$kernelver")" > "$(__kmx_ver "$BUILD_EXCLUSIVE_KERNEL_MAX")" ]]; then
  __kmx_skip "BUILD_EXCLUSIVE_KERNEL_MAX=\"$BUILD_EXCLUSIVE_KERNEL_MAX\": $kernelver is newer"
fi
if [ -n "${BUILD_EXCLUSIVE_ARCH:-}" ] && ! [[ "$arch" =~ $BUILD_EXCLUSIVE_ARCH ]]; then
  __kmx_skip "BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch"
fi
for __kmx_want in ${BUILD_EXCLUSIVE_CONFIG:-}; do
  if [ "${__kmx_want#!}" != "$__kmx_want" ]; then
    if grep -qE "^${__kmx_want#!}=[ym]" "$kernel_source_dir/.config"; then __kmx_skip "BUILD_EXCLUSIVE_CONFIG: ${__kmx_want#!} is set in this kernel"; fi
  else
    grep -qE "^$__kmx_want=[ym]" "$kernel_source_dir/.config" || __kmx_skip "BUILD_EXCLUSIVE_CONFIG: $__kmx_want is not set in this kernel"
  fi
done
echo "kmatrix-dkms-build"

__kmx_build="$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"
mkdir -p "$(dirname "$__kmx_build")"
ln -sfn /build/src "$__kmx_build"
cd "$__kmx_build"

# Arrays are read as DKMS reads them: indexes 0 … length-1 (a sparse entry past that is ignored).
__kmx_count() { eval "set -- \${$1[@]+\"\${$1[@]}\"}"; echo "$#"; }

# PATCH[i] applies when PATCH_MATCH[i] is empty or matches the kernel (bash regex), in index order.
for ((__kmx_i = 0; __kmx_i < $(__kmx_count PATCH); __kmx_i++)); do
  __kmx_p="${PATCH[$__kmx_i]:-}"
  [ -n "$__kmx_p" ] || continue
  case "$__kmx_p" in */*|..*) echo "error: PATCH[$__kmx_i]=\"$__kmx_p\" is not a file name in patches/"; exit 1 ;; esac
  if [ -n "${PATCH_MATCH[$__kmx_i]:-}" ] && ! [[ "$kernelver" =~ ${PATCH_MATCH[$__kmx_i]} ]]; then
    echo "not applying patches/$__kmx_p: PATCH_MATCH[$__kmx_i]=\"${PATCH_MATCH[$__kmx_i]}\" does not match $kernelver"
    continue
  fi
  echo "applying patches/$__kmx_p"
  patch -p1 --forward < "patches/$__kmx_p"
done

# PRE_BUILD/POST_BUILD: a script of the tree, word-split into its arguments, run from the build
# folder. Unlike DKMS 3.0 (which only warns), a script that fails fails the build.
__kmx_run_script() {
  local what="$1" script="$2"
  [ -n "$script" ] || return 0
  local run="$__kmx_build/$script"
  [ -x "${run%% *}" ] || { echo "error: the $what script ${script%% *} is not executable"; return 1; }
  echo "running the $what script: $script"
  ( cd "$__kmx_build" && exec $run )
}
__kmx_run_script PRE_BUILD "${PRE_BUILD:-}"

# MAKE[0] unless MAKE_MATCH[0] is set; then the last MAKE[i] whose MAKE_MATCH[i] matches the kernel.
__kmx_cmd=""
[ -n "${MAKE_MATCH[0]:-}" ] || __kmx_cmd="${MAKE[0]:-}"
for ((__kmx_i = 0; __kmx_i < $(__kmx_count MAKE); __kmx_i++)); do
  if [ -n "${MAKE[$__kmx_i]:-}" ] && [ -n "${MAKE_MATCH[$__kmx_i]:-}" ] && [[ "$kernelver" =~ ${MAKE_MATCH[$__kmx_i]} ]]; then __kmx_cmd="${MAKE[$__kmx_i]}"; fi
done
[ -n "$__kmx_cmd" ] || __kmx_cmd="make -C $kernel_source_dir M=$__kmx_build"
# As DKMS does: a command that starts with `make` gets the build's share of the CPUs and the kernel.
__kmx_cmd="${__kmx_cmd/#make/make -j$__kmx_jobs KERNELRELEASE=$kernelver}"
echo "+ $__kmx_cmd"
eval "$__kmx_cmd"

__kmx_run_script POST_BUILD "${POST_BUILD:-}"

# Each module as DKMS takes it (one record per index up to the longest of the four module arrays;
# a lone record without a name is PACKAGE_NAME): BUILT_MODULE_LOCATION[i]/BUILT_MODULE_NAME[i].ko,
# stripped of debug info unless STRIP[i] (default STRIP[0], default yes) says no, stored as
# DEST_MODULE_NAME[i].ko. dkms.ts validates the same records, and reads only regular files.
__kmx_out=/build/src/.kmatrix-out
rm -rf "$__kmx_out"; mkdir "$__kmx_out"
__kmx_records=0
for __kmx_a in BUILT_MODULE_NAME BUILT_MODULE_LOCATION DEST_MODULE_NAME DEST_MODULE_LOCATION; do
  __kmx_n="$(__kmx_count "$__kmx_a")"
  [ "$__kmx_n" -le "$__kmx_records" ] || __kmx_records="$__kmx_n"
done
[ "$__kmx_records" -gt 0 ] || __kmx_records=1
for ((__kmx_i = 0; __kmx_i < __kmx_records; __kmx_i++)); do
  __kmx_name="${BUILT_MODULE_NAME[$__kmx_i]:-}"
  [ -n "$__kmx_name" ] || [ "$__kmx_records" -ne 1 ] || __kmx_name="$PACKAGE_NAME"
  __kmx_location="${BUILT_MODULE_LOCATION[$__kmx_i]:-}"
  [ -z "$__kmx_location" ] || __kmx_location="${__kmx_location%/}/"
  __kmx_dest="${DEST_MODULE_NAME[$__kmx_i]:-$__kmx_name}"
  case "/$__kmx_name/$__kmx_dest/ $__kmx_location" in */../*|*" /"*|*" ../"*|*/..) echo "error: module record $__kmx_i names a path outside the tree"; exit 1 ;; esac
  __kmx_built="$__kmx_location$__kmx_name.ko"
  if [ -z "$__kmx_name" ] || [ ! -f "$__kmx_built" ]; then
    echo "error: Build of $__kmx_name.ko failed: BUILT_MODULE_LOCATION[$__kmx_i]/BUILT_MODULE_NAME[$__kmx_i] = $__kmx_built does not exist after the build"
    exit 1
  fi
  cp "$__kmx_built" "$__kmx_out/$__kmx_dest.ko"
  __kmx_strip="${STRIP[$__kmx_i]:-${STRIP[0]:-yes}}"
  case "$__kmx_strip" in [nN]*) ;; *) "${CROSS_COMPILE:-}strip" -g "$__kmx_out/$__kmx_dest.ko" ;; esac
done
