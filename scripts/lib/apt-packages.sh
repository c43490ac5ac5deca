# SPDX-License-Identifier: Apache-2.0
# Sourced by the setup scripts: installs the Debian packages among its arguments that are not
# installed yet (apt-get from the configured mirror, no recommends). The caller defines
# log MESSAGE and die MESSAGE. Waits for the dpkg lock when another setup script holds it.
apt_install_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600)
  $sudo "${apt[@]}" update -qq || die "apt-get update failed"
  $sudo "${apt[@]}" install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install failed for: ${missing[*]}"
}
