#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make image`: builds the Dockerfile with podman on this machine, offline except for the
# Debian mirror, and tags localhost/cvdeploy:<version> and localhost/cvdeploy:latest.
#
#  1. the base localhost/debian:bookworm-slim from mmdebstrap (scripts/image-base.sh; reused
#     when present);
#  2. a clean build context under build-image/context: the tracked and untracked-not-ignored
#     files of the work tree plus .deps/onnxruntime (dereferenced), so the build stage needs no
#     npm and nothing of the host's build directories enters the image;
#  3. podman build --format docker (HEALTHCHECK is a Docker-format field), the host's ccache
#     mounted at /ccache so that a rebuild recompiles only what changed.
# Environment: IMAGE (default localhost/cvdeploy), IMAGE_BUILD_JOBS (stages built in
# parallel, default 2), CVDEPLOY_IMAGE_CCACHE=0 to build without
# the ccache mount, CONTAINERS_CONF (default: scripts/container-env.sh writes one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE="${IMAGE:-localhost/cvdeploy}"
log() { echo "build-image: $*" >&2; }
die() { echo "build-image: error: $*" >&2; exit 1; }

version="$(sed -n 's/^project(cvdeploy VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
[ -n "$version" ] || die "cannot read the version from CMakeLists.txt"
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
ort="$ROOT/.deps/onnxruntime"
[ -f "$ort/include/onnxruntime_cxx_api.h" ] || die "$ort missing: run scripts/setup-deps.sh"

scripts/image-base.sh

context="$ROOT/build-image/context"
rm -rf "$context"
mkdir -p "$context/.deps"
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -C "$context" -xf -
mkdir -p "$context/.deps/onnxruntime"
cp -a "$ort/." "$context/.deps/onnxruntime/"  # keeps libonnxruntime.so a symlink

volume=()
ccache_dir="$(ccache -k cache_dir 2>/dev/null || true)"
if [ "${CVDEPLOY_IMAGE_CCACHE:-1}" != 0 ] && [ -n "$ccache_dir" ]; then
  mkdir -p "$ccache_dir"
  volume=(-v "$ccache_dir:/ccache")
fi

log "building $IMAGE:$version (revision $revision)"
start=$SECONDS
# --jobs 2: the opencv and build stages are independent and run side by side.
podman build --pull=never --format docker --network host --jobs "${IMAGE_BUILD_JOBS:-2}" "${volume[@]}" \
  --build-arg BASE=localhost/debian:bookworm-slim \
  --build-arg VERSION="$version" --build-arg REVISION="$revision" \
  -t "$IMAGE:$version" -t "$IMAGE:latest" -f "$context/Dockerfile" "$context"
log "built $IMAGE:$version and $IMAGE:latest in $((SECONDS - start)) s;" \
  "size $(podman image inspect --format '{{.Size}}' "$IMAGE:latest") bytes"
