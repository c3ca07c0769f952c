# Toolchain image for Debian kernels, shared by every toolchains/debian-*/ (each passes its own
# base image, gcc major and cross targets). Kernel headers are NOT in the image: they are mounted
# read-only per build from kmatrix's content-addressed store, so one image serves every kernel of
# its release. The gcc major must be the one the release's kernels were built with
# (CONFIG_CC_VERSION_TEXT): bullseye 10, bookworm 12, trixie 14. `patch` applies a DKMS tree's PATCH[].
ARG BASE
FROM ${BASE}
ARG GCC
# Space-separated GNU triplets to cross-compile for, e.g. "aarch64-linux-gnu".
ARG CROSS_TRIPLETS=""
ENV DEBIAN_FRONTEND=noninteractive LC_ALL=C
RUN set -eu; \
    pkgs="gcc-${GCC} make bc kmod libelf-dev libc6-dev dwarves patch"; \
    for t in ${CROSS_TRIPLETS}; do pkgs="$pkgs gcc-${GCC}-$t"; done; \
    apt-get update; \
    apt-get install -y --no-install-recommends $pkgs; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/*; \
    # Kbuild calls plain "gcc" (or "<triplet>-gcc" with CROSS_COMPILE): point them at this major.
    ln -sf "gcc-${GCC}" /usr/bin/gcc; \
    for t in ${CROSS_TRIPLETS}; do ln -sf "$t-gcc-${GCC}" "/usr/bin/$t-gcc"; done; \
    gcc --version | head -n1; \
    for t in ${CROSS_TRIPLETS}; do "$t-gcc" --version | head -n1; done
