#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the local base image of `make image` (localhost/debian:bookworm-slim) when it is not
# there yet: no container registry is reachable here, so the base is a minimal Debian
# bookworm root filesystem built by mmdebstrap (--variant=apt, about 75 s) from the mirror of
# this machine's apt configuration, then imported. Documentation, man pages and locales are
# left out the way debian:bookworm-slim does (the dpkg filter stays in the image, so packages
# installed on top are slim too). /usr is merged by mmdebstrap's merged-usr hook instead of the
# usrmerge package, which would keep perl (46 MB) installed for good. Run through
# scripts/container-env.sh.
set -euo pipefail

TAG="${1:-localhost/debian:bookworm-slim}"
log() { echo "image-base: $*" >&2; }
die() { echo "image-base: error: $*" >&2; exit 1; }

if podman image exists "$TAG"; then
  log "$TAG present (podman rmi $TAG to rebuild it)"
  exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run scripts/setup-image.sh"

mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
fi
if [ -z "$mirror" ]; then
  mirror="$(grep -hE '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -v security | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1)"
fi
[ -n "$mirror" ] || die "cannot read a Debian mirror from /etc/apt/sources.list(.d)"

log "building a bookworm root filesystem with mmdebstrap (about 75 s)"
start=$SECONDS
mmdebstrap --quiet --variant=apt \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --aptopt='APT::Install-Recommends "false"' \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm - "deb $mirror bookworm main" "deb $mirror bookworm-updates main" |
  podman import --change 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
log "$TAG imported in $((SECONDS - start)) s"
