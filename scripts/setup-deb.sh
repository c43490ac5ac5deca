#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the tools of `make deb` / `make test-deb` (issue 17, Debian package): dpkg-dev
# (dpkg-shlibdeps, dpkg-deb), fakeroot, mmdebstrap (the fresh bookworm root filesystem the
# test installs the package into), lintian (package checks) and systemd (systemd-analyze
# verify/security on the unit). Debian packages only, through apt-get; idempotent: returns at
# once when everything is installed. systemd-container: systemd-nspawn boots the test root
# filesystem so the unit runs under systemd; strace: the syscall filter check.
set -euo pipefail

log() { echo "setup-deb: $*" >&2; }
die() { echo "setup-deb: error: $*" >&2; exit 1; }

PACKAGES=(dpkg-dev fakeroot file mmdebstrap lintian systemd systemd-container strace)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${PACKAGES[@]}"
