#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the container tools `make image` / `make test-image` need (issue 17), kept out of
# setup-deps.sh so that CI pays for them only when it builds images. Idempotent: returns at
# once when everything is present.
#
#   podman, buildah, skopeo, runc  build and run the image (runc: crun cannot set
#                                  RLIMIT_NOFILE here; see scripts/container-env.sh)
#   uidmap, fuse-overlayfs,        rootless podman (subordinate ids, overlay without root)
#   slirp4netns
#   mmdebstrap                     the bookworm base root filesystem from the Debian mirror
#                                  (no container registry is reachable here)
set -euo pipefail

log() { echo "setup-image: $*" >&2; }
die() { echo "setup-image: error: $*" >&2; exit 1; }

PACKAGES=(podman buildah skopeo runc uidmap fuse-overlayfs slirp4netns mmdebstrap)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${PACKAGES[@]}"
log "container tools ready: $(podman --version)"
