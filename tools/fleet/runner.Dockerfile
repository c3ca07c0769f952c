# The runner image for ARC (tools/fleet/arc/values.yaml) and for `kmatrix dispatch --k8s`:
# GitHub's runner plus git and a Node for `npm ci` (which then brings the project's exact Node 22).
# Docker comes from the dind sidecar; kmatrix talks to it with dockerode, so no docker CLI.
ARG RUNNER_IMAGE=ghcr.io/actions/actions-runner:2.329.0
FROM ${RUNNER_IMAGE}
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates nodejs npm jq xz-utils zstd openssl \
 && rm -rf /var/lib/apt/lists/*
USER runner
