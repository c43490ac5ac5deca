# SPDX-License-Identifier: Apache-2.0
# Sourced (not run) by the setup scripts: a private apt configuration for another Debian
# suite (e.g. trixie) that fetches single packages with `apt-get download` without touching
# the machine's own apt state. The mirror is read from this machine's Debian source
# configuration, so no host name is written anywhere.
#
#   private_apt_init SUITE ARCH DIR   creates DIR (state, cache, sources.list) and sets the
#                                     array PRIVATE_APT_OPTS for apt-get; returns 1 when no
#                                     mirror can be read.
#   private_apt_update                apt-get update through it (quiet).
#   private_apt_download DEST PKG...  apt-get download PKG... into the directory DEST.

# The first Debian mirror URI of /etc/apt (deb822 sources first, then one-line sources).
private_apt_mirror_uri() {
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [ -z "$uri" ]; then
    uri="$(grep -hE '^deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      grep -v security | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1)"
  fi
  echo "$uri"
}

private_apt_init() {
  local suite="$1" arch="$2" apt_root="$3" uri
  uri="$(private_apt_mirror_uri)"
  [ -n "$uri" ] || return 1
  mkdir -p "$apt_root"/{state/lists/partial,cache/archives/partial,etc/preferences.d,etc/apt.conf.d,etc/sources.list.d}
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" \
    >"$apt_root/etc/sources.list"
  [ -f "$apt_root/status" ] || : >"$apt_root/status"
  PRIVATE_APT_OPTS=(-o "Dir::State=$apt_root/state" -o "Dir::State::status=$apt_root/status"
    -o "Dir::Cache=$apt_root/cache" -o "Dir::Etc::SourceList=$apt_root/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt_root/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$apt_root/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$apt_root/etc/preferences.d"
    -o "APT::Architecture=$arch" -o "Debug::NoLocking=1")
}

private_apt_update() {
  apt-get "${PRIVATE_APT_OPTS[@]}" update -qq >/dev/null 2>&1
}

private_apt_download() {
  local dest="$1"
  shift
  (cd "$dest" && apt-get "${PRIVATE_APT_OPTS[@]}" download "$@" >/dev/null 2>&1)
}
