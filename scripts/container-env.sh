#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a command (podman, buildah, ...) with the container settings that work on these
# machines (docs/deploy.md "Container image"): `scripts/container-env.sh podman build ...`.
#
# The default OCI runtime (crun) fails here with "setrlimit RLIMIT_NOFILE: Operation not
# permitted"; runc with explicit ulimits and the cgroupfs manager (no systemd) works. The
# containers.conf is written under the user's cache and passed as CONTAINERS_CONF, so the
# machine's own configuration is left alone. An already set CONTAINERS_CONF wins.
set -euo pipefail

if [ -z "${CONTAINERS_CONF:-}" ]; then
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/cvdeploy"
  mkdir -p "$dir"
  conf="$dir/containers.conf"
  tmp="$(mktemp "$conf.XXXXXX")"
  cat >"$tmp" <<'CONF'
# Written by cvdeploy scripts/container-env.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  mv -f "$tmp" "$conf"
  export CONTAINERS_CONF="$conf"
fi
(($#)) || { echo "CONTAINERS_CONF=$CONTAINERS_CONF"; exit 0; }
exec "$@"
