#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the tools the deployment checks need (tests/deploy, scripts/validate_k8s.py).
# Idempotent: when everything is present it only checks and returns.
#
#  - Debian packages: yamllint, prometheus (for promtool), catatonit (podman kube play). kubectl is expected on PATH
#    (it renders kustomize overlays offline); the checks skip when it is missing.
#  - npm kubernetes-models (pinned) with the KEDA and Prometheus Operator CRD models and their
#    dependencies into .deps/node/k8s
#    (npm install --ignore-scripts: no install script runs; never committed).
# Called by scripts/setup-deps.sh; can be run on its own.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="$ROOT/.deps/node/k8s"
K8S_MODELS_VERSION="5.1.0"
# Pinned together: the CRD model packages depend on kubernetes-models ^5.1.0.
NPM_PACKAGES=("kubernetes-models@$K8S_MODELS_VERSION" "@kubernetes-models/keda@2.0.0"
  "@kubernetes-models/prometheus-operator@6.0.0")
log() { echo "setup-k8s: $*" >&2; }
die() { echo "setup-k8s: error: $*" >&2; exit 1; }

# catatonit: the pause binary of the infra container `podman kube play` builds for each pod
# (scripts/kube_play_test.sh); podman itself comes with the container image's setup.
PACKAGES=(yamllint prometheus catatonit)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
# prometheus' postinst starts nothing here (no systemd); only promtool is used.
apt_install_missing "${PACKAGES[@]}"

STAMP="$PREFIX/.stamp-$(echo "${NPM_PACKAGES[*]}" | md5sum | cut -c1-12)"
if [ -f "$STAMP" ]; then exit 0; fi
command -v npm >/dev/null 2>&1 || die "npm not found (install Debian package npm)"
mkdir -p "$PREFIX"
[ -f "$PREFIX/package.json" ] || echo '{"name":"cvdeploy-k8s-checks","private":true}' >"$PREFIX/package.json"
log "installing ${NPM_PACKAGES[*]} into $PREFIX"
(cd "$PREFIX" && npm install --silent --ignore-scripts --no-audit --no-fund --save-exact \
  "${NPM_PACKAGES[@]}" >/dev/null) ||
  die "npm install ${NPM_PACKAGES[*]} failed (is the npm registry reachable?)"
touch "$STAMP"
