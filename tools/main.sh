#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine to built, boot-tested and cached kernel modules:
#   host set-up (Docker engine, registry, QEMU, tools) → npm ci → crawl the Debian archive →
#   build and pin the toolchain image → generate targets/ → nx run-many -t test-driver
#   (real builds, then each target's own kernel booted under QEMU with its module) → the same
#   again (all from cache).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

step "host set-up: Docker engine, OCI registry, QEMU, mmdebstrap, xz, kmod"
bash tools/setup-host.sh

if [ ! -x node_modules/.bin/nx ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci (brings Node 22 for the project: the 'node' devDependency)"
  npm ci
fi

step "crawl the Debian archive's kernel header packages (what support-matrix.json needs)"
npx kmatrix crawl

step "build, push and pin the toolchain images (each reused when unchanged)"
for spec in toolchains/*/toolchain.json; do
  npx kmatrix toolchain build "$(basename "$(dirname "$spec")")"
done

step "generate targets/ from support-matrix.json"
npx kmatrix gen

export NX_DAEMON="${NX_DAEMON:-false}"
step "build every target, then boot its kernel and load it (nx run-many -t test-driver)"
npx nx run-many -t test-driver --output-style=static

step "run it again: every task comes from the Nx cache"
npx nx run-many -t test-driver

step "built modules"
for target in $(find targets -name target.json | sort); do
  for ko in "dist/$(dirname "$target")"/*.ko; do
    printf '%s  %s\n' "$(sha256sum "$ko" | cut -c1-16)" "$ko"
    printf '    vermagic: %s\n' "$(modinfo -F vermagic "$ko")"
  done
  result="dist/boot/$(dirname "$target")/result.json"
  if [ -f "$result" ]; then
    printf '    boot: %s\n' "$(node -p "const r = require('./$result'); r.status + ' — ' + r.message")"
  fi
done
