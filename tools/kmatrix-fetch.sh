#!/bin/sh
# kmatrix-fetch.sh — on a node: fetch this kernel's published module (or package) of a driver
# from a kmatrix artifact store, check every byte against the store's SHA256s, optionally install.
#
#   kmatrix-fetch.sh BASE DRIVER [--package | --install] [--distro D] [--out DIR]
#
# BASE is where the store is served (https://…/prefix, or a local folder). The address comes
# from `uname -r` alone: BASE/modules/DRIVER/DISTRO/$(uname -r)/$(uname -m)/latest.sha256sums,
# one "<sha256>  <key>" line per published file. DISTRO is kmatrix's name for this system, read
# from /etc/os-release (debian-bookworm, ubuntu-jammy, fedora-41, almalinux-9, amazonlinux-2023…).
#   (default)   the module files (signed ones when published signed) into DIR (default .)
#   --package   the .deb or .rpm instead (whichever this system installs)
#   --install   the package, installed (dpkg -i / rpm -U: modules under /lib/modules/$(uname -r)/updates/,
#               depmod); BASE must be https:// or a local folder
# What it checks: every byte against the store's list (integrity). Who built the module is
# `kmatrix verify`'s question (the provenance's signature), run where the publisher's key is known.
# Exit 0 when every file matches its SHA256; 1 (nothing kept) otherwise.
# Needs sh, curl or wget (for an http(s) BASE), sha256sum. KMATRIX_KERNEL, KMATRIX_ARCH and
# KMATRIX_OS_RELEASE stand in for uname -r, uname -m and /etc/os-release (tests, other roots).
set -eu

usage() { echo "usage: kmatrix-fetch.sh BASE DRIVER [--package | --install] [--distro D] [--out DIR]" >&2; exit 2; }
[ $# -ge 2 ] || usage
base=${1%/}; driver=$2; shift 2
want=module; distro=; out=.
while [ $# -gt 0 ]; do
  case $1 in
    --package) want=package ;;
    --install) want=install ;;
    --distro) [ $# -ge 2 ] || usage; distro=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift ;;
    *) usage ;;
  esac
  shift
done

kernel=${KMATRIX_KERNEL:-$(uname -r)}
arch=${KMATRIX_ARCH:-$(uname -m)}
if [ -z "$distro" ]; then
  # shellcheck disable=SC1090
  . "${KMATRIX_OS_RELEASE:-/etc/os-release}"
  case ${ID:-} in
    debian | ubuntu) distro=$ID-${VERSION_CODENAME:?no VERSION_CODENAME in os-release; pass --distro} ;;
    amzn) distro=amazonlinux-${VERSION_ID%%.*} ;;
    *) distro=${ID:?no ID in os-release; pass --distro}-${VERSION_ID%%.*} ;;
  esac
fi

case $want:$base in
  install:http://*)
    # The list and the files come from the same server: over plain HTTP anyone on the path could
    # change both. Installing as root needs https (or a local folder, or KMATRIX_ALLOW_HTTP=1).
    [ "${KMATRIX_ALLOW_HTTP:-}" = 1 ] || { echo "kmatrix-fetch: --install needs an https:// BASE" >&2; exit 1; } ;;
esac

fetch() { # KEY DEST
  case $base in
    http://* | https://*)
      if command -v curl > /dev/null; then curl -fsSL --retry 3 -o "$2" "$base/$1"
      else wget -q -O "$2" "$base/$1"; fi ;;
    *) cp "$base/$1" "$2" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dir=modules/$driver/$distro/$kernel/$arch
if ! fetch "$dir/latest.sha256sums" "$tmp/sums" 2> "$tmp/err"; then
  echo "kmatrix-fetch: nothing published for $driver on $distro $kernel $arch ($base/$dir/latest.sha256sums: $(cat "$tmp/err"))" >&2
  exit 1
fi

if [ "$want" = module ]; then
  # The signed modules when there are any (the node loads those), else the modules.
  grep -E '\.signed\.ko$' "$tmp/sums" > "$tmp/pick" || grep -E '\.ko$' "$tmp/sums" > "$tmp/pick" || true
elif command -v dpkg > /dev/null; then
  grep -E '\.deb$' "$tmp/sums" > "$tmp/pick" || true
else
  grep -E '\.rpm$' "$tmp/sums" > "$tmp/pick" || true
fi
if [ ! -s "$tmp/pick" ]; then
  echo "kmatrix-fetch: $dir has no $want for this system (publish with --packages deb,rpm)" >&2
  exit 1
fi

while read -r _ key; do
  # Only files of this kernel's folder, by plain names: a list naming anything else is refused.
  case $key in
    "$dir"/*/*/* | *..* | *[!A-Za-z0-9._+~/-]*) echo "kmatrix-fetch: refusing the key $key" >&2; exit 1 ;;
    "$dir"/*/*) ;;
    *) echo "kmatrix-fetch: refusing the key $key" >&2; exit 1 ;;
  esac
  mkdir -p "$tmp/files/$(dirname "$key")"
  if ! fetch "$key" "$tmp/files/$key"; then
    echo "kmatrix-fetch: cannot download $base/$key" >&2
    exit 1
  fi
done < "$tmp/pick"
if ! (cd "$tmp/files" && sha256sum --quiet -c "$tmp/pick"); then
  echo "kmatrix-fetch: a downloaded file does not match its published SHA256; nothing kept" >&2
  exit 1
fi

mkdir -p "$out"
while read -r _ key; do
  file=$(basename "$key")
  # A signed module is loaded under the module's own name: modprobe looks for <name>.ko.
  case $file in *.signed.ko) name=${file%.signed.ko}.ko ;; *) name=$file ;; esac
  cp "$tmp/files/$key" "$out/$name"
  echo "$out/$name"
  if [ "$want" = install ]; then
    case $name in
      *.deb) dpkg -i "$out/$name" ;;
      # -U --oldpackage: a later build of the same kernel replaces the installed one (build ids do not sort).
      *.rpm) rpm -U --oldpackage "$out/$name" ;;
    esac
  fi
done < "$tmp/pick"
