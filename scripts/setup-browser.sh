#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the dashboard's browser test needs (tests/browser/dashboard_test.mjs).
# Idempotent: when everything is present it only checks and returns.
#
#  - Debian package chromium (the test launches /usr/bin/chromium --headless --no-sandbox).
#  - npm puppeteer-core (pinned) and its dependencies into .deps/browser
#    (npm install --ignore-scripts: no install script runs; puppeteer-core never downloads a
#    browser; never committed).
# Called by scripts/setup-deps.sh; can be run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.deps/browser"
PUPPETEER_CORE_VERSION="24.22.0"
NPM_PACKAGES=("puppeteer-core@$PUPPETEER_CORE_VERSION")
log() { echo "setup-browser: $*" >&2; }
die() { echo "setup-browser: error: $*" >&2; exit 1; }

PACKAGES=(chromium)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${PACKAGES[@]}"

STAMP="$PREFIX/.stamp-$(echo "${NPM_PACKAGES[*]}" | md5sum | cut -c1-12)"
if [ -f "$STAMP" ]; then exit 0; fi
command -v npm >/dev/null 2>&1 || die "npm not found (install Debian package npm)"
mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] ||
  echo '{"name":"cvdeploy-browser-tests","private":true,"type":"module"}' >"$PREFIX/package.json"
log "installing ${NPM_PACKAGES[*]} into $PREFIX"
# PUPPETEER_SKIP_DOWNLOAD: belt and braces; puppeteer-core has no download step anyway.
(cd "$PREFIX" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --silent --ignore-scripts --no-audit \
  --no-fund --save-exact "${NPM_PACKAGES[@]}" >/dev/null) ||
  die "npm install ${NPM_PACKAGES[*]} failed (is the npm registry reachable?)"
touch "$STAMP"
