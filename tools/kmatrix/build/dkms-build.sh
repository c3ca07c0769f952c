# Builds a DKMS source tree the way DKMS would, inside the toolchain container (see dkms.ts).
# Arguments: kernelver kernel_source_dir arch. Sources are in /build/src.
set -euo pipefail
kernelver="$1"; kernel_source_dir="$2"; arch="$3"
# DKMS builds in $dkms_tree/<name>/<version>/build, and some dkms.conf files name that path in
# MAKE: make it the sources (the container's /tmp is writable; /var/lib/dkms is not, for our user).
dkms_tree=/tmp/dkms; source_tree=/usr/src
cd /build/src
set +u
. ./dkms.conf
set -u
mkdir -p "$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION"
ln -sfn /build/src "$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"
cd "$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"
skip() { echo "kmatrix-dkms-skip: $*"; exit 0; }
if [ -n "${BUILD_EXCLUSIVE_KERNEL:-}" ] && ! [[ "$kernelver" =~ $BUILD_EXCLUSIVE_KERNEL ]]; then
  skip "BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
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
if [ -n "${PATCH[*]:-}" ]; then
  for p in "${PATCH[@]}"; do
    echo "applying patches/$p"
    patch -p1 --forward < "patches/$p"
  done
fi
cmd="${MAKE[0]:-}"
[ -n "$cmd" ] || cmd="make -C $kernel_source_dir M=$PWD"
echo "+ $cmd"
eval "$cmd"
