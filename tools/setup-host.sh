#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for kmatrix: installs the Docker engine, mmdebstrap, the
# OCI registry and the small tools kmatrix calls, then starts dockerd and the registry if they are
# not already answering. Safe to run again: it only does what is missing.
set -euo pipefail

REGISTRY_ADDR="${KMATRIX_REGISTRY:-127.0.0.1:5000}"
STATE_DIR="${KMATRIX_STATE_DIR:-/var/lib/kmatrix}"
LOG_DIR="${STATE_DIR}/logs"

say() { printf '[setup] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run this as root (it installs packages and starts dockerd): sudo bash $0"
  exit 1
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
# mmdebstrap: toolchain images are one reproducible root filesystem each
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v xz >/dev/null || need+=(xz-utils)
command -v modinfo >/dev/null || need+=(kmod)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v file >/dev/null || need+=(file)
# rpmbuild: the tests build real .rpm header packages (gzip, xz, zstd payloads) to unpack
command -v rpmbuild >/dev/null || need+=(rpm)
# createrepo_c: the tests serve local RPM mirrors (Fedora, AlmaLinux, Amazon Linux) in their real layout
command -v createrepo_c >/dev/null || need+=(createrepo-c)
# QEMU: test-driver boots each target's own kernel (amd64 guests; arm64 guests under -M virt)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null || need+=(qemu-system-arm)
# zstd: some kernels compress their vmlinux with it (unpacked once to boot without the decompressor)
command -v zstd >/dev/null || need+=(zstd)
# openssl: module signing keys in the tests, and `kmatrix verify` checks signatures with it
command -v openssl >/dev/null || need+=(openssl)
# chromium: the tests open the HTML matrix report in a real headless browser (playwright-core)
command -v chromium >/dev/null || need+=(chromium)
# gpgv and the archive keyring: the crawl checks each suite's InRelease signature with them
command -v gpgv >/dev/null || need+=(gpgv)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
# apt-ftparchive and gpg: the tests build signed local mirrors with Debian's own tools
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
command -v gpg >/dev/null || need+=(gpg)
# Ceph's RADOS Gateway (+ a monitor and an OSD): the one S3 implementation in Debian that honours
# conditional writes (If-Match, If-None-Match), which the publish and cache claims rest on
command -v radosgw >/dev/null || need+=(radosgw ceph-mon ceph-osd)
command -v uuidgen >/dev/null || need+=(uuid-runtime)
# securesystemslib: the tests check provenance signatures with an implementation that is not ours
[ -d /usr/lib/python3/dist-packages/securesystemslib ] || need+=(python3-securesystemslib)
# qemu-user-static + binfmt-support: Ubuntu's and the RPM distros' arm64 header packages carry
# arm64 host programs (fixdep, modpost); binfmt_misc runs them through qemu-aarch64 (F flag) inside
# the x86_64 build containers. binfmt_misc must be mounted before the package registers itself.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || say "cannot mount binfmt_misc: arm64 Ubuntu/RPM targets will not build here"
fi
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 2>/dev/null || say "cannot register qemu-aarch64 with binfmt_misc"
fi

mkdir -p "$LOG_DIR"

if ! docker version >/dev/null 2>&1; then
  say "starting dockerd (log: $LOG_DIR/dockerd.log)"
  # No bridge and no iptables: compile containers run with network none, image builds with host.
  nohup dockerd --iptables=false --bridge=none >"$LOG_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
  docker version >/dev/null 2>&1 || { say "dockerd did not come up; see $LOG_DIR/dockerd.log"; exit 1; }
fi

if ! curl -fsS "http://${REGISTRY_ADDR}/v2/" >/dev/null 2>&1; then
  say "starting the OCI registry on ${REGISTRY_ADDR} (log: $LOG_DIR/registry.log)"
  mkdir -p "$STATE_DIR/registry"
  cat >"$STATE_DIR/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${STATE_DIR}/registry
  delete:
    enabled: true
http:
  addr: ${REGISTRY_ADDR}
YAML
  nohup docker-registry serve "$STATE_DIR/registry.yml" >"$LOG_DIR/registry.log" 2>&1 &
  for _ in $(seq 1 40); do curl -fsS "http://${REGISTRY_ADDR}/v2/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS "http://${REGISTRY_ADDR}/v2/" >/dev/null || { say "the registry did not come up; see $LOG_DIR/registry.log"; exit 1; }
fi
say "docker engine and registry (${REGISTRY_ADDR}) are up"
