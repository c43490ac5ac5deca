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
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0

log "installing Debian packages: ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# Other setup scripts may hold the dpkg lock: wait for it instead of failing.
APT=(apt-get -o DPkg::Lock::Timeout=600)
$SUDO "${APT[@]}" update -qq || die "apt-get update failed"
$SUDO "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  die "apt-get install failed for: ${missing[*]}"
log "container tools ready: $(podman --version)"
