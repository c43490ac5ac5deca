#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the aarch64 edge build (make edge / make test-edge) needs. Idempotent: when
# everything is in place it only checks and returns within a second.
#
#  - The Debian cross toolchain g++-aarch64-linux-gnu (apt-get, only when missing).
#  - An arm64 sysroot: `mmdebstrap --arch=arm64 --variant=extract` of the -dev packages the
#    build links (extracted, no maintainer scripts run), plus the libblas.so.3/liblapack.so.3
#    links that the alternatives system would have made. Cached under
#    ${XDG_CACHE_HOME:-$HOME/.cache}/cvdeploy/sysroot-arm64 (about 1 GB) and linked from
#    .deps/sysroot-arm64.
#  - ONNX Runtime's arm64 library from the onnxruntime-node tarball that setup-deps.sh caches
#    (bin/napi-v6/linux/arm64/) into .deps/onnxruntime-arm64/lib, the headers copied from the
#    x86 install (.deps/onnxruntime/include, the same version's C/C++ API).
#  - trixie's static qemu-user (qemu-aarch64; bookworm's 7.2 crashes in ONNX Runtime's CPU
#    detection), fetched with `apt-get download` through the private trixie apt configuration
#    of scripts/lib/private-apt.sh and unpacked with dpkg-deb -x into .deps/qemu.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cvdeploy"
ORT_VERSION="${CVDEPLOY_ORT_VERSION:-1.30.0}"
SYSROOT_VERSION=1 # bump when the package list changes: the cached sysroot is rebuilt
log() { echo "setup-edge: $*" >&2; }
die() { echo "setup-edge: error: $*" >&2; exit 1; }
. "$ROOT/scripts/lib/private-apt.sh"

# The host ONNX Runtime (headers, the cached npm tarball) comes first.
"$ROOT/scripts/setup-deps.sh"

# ---------------------------------------------------------------- host packages
HOST_PACKAGES=(g++-aarch64-linux-gnu mmdebstrap ccache file)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${HOST_PACKAGES[@]}"

# ---------------------------------------------------------------- arm64 sysroot
# What the build links and includes (the same -dev set as setup-deps.sh, arm64 side).
SYSROOT_PACKAGES=(
  libc6-dev libstdc++-12-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev
  libboost1.74-dev libssl-dev libsodium-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libjpeg62-turbo-dev libonnx-dev libprotobuf-dev libgtest-dev libgmock-dev
)
SYSROOT="$CACHE/sysroot-arm64"
if [ ! -f "$SYSROOT/.stamp-$SYSROOT_VERSION" ]; then
  uri="$(private_apt_mirror_uri)"
  [ -n "$uri" ] || die "cannot read a Debian mirror from /etc/apt/sources.list(.d)"
  rm -rf "$SYSROOT"
  mkdir -p "$CACHE"
  log "building the arm64 sysroot in $SYSROOT (mmdebstrap, a few minutes)"
  includes="$(IFS=,; echo "${SYSROOT_PACKAGES[*]}")"
  mmdebstrap --quiet --arch=arm64 --variant=extract --include="$includes" bookworm "$SYSROOT" \
    "deb $uri bookworm main" "deb $uri bookworm-updates main" ||
    die "mmdebstrap of the arm64 sysroot failed"
  # The alternatives system (not run by --variant=extract) would point these at an
  # implementation; OpenCV's core library needs them at link time.
  lib="$SYSROOT/usr/lib/aarch64-linux-gnu"
  for name in blas lapack; do
    impl="$(cd "$lib" && ls "$name"/lib"$name".so.3 2>/dev/null | head -n1 || true)"
    [ -n "$impl" ] || impl="$(cd "$lib" && ls openblas-pthread/lib"$name".so.3 2>/dev/null | head -n1 || true)"
    [ -n "$impl" ] || die "no lib$name.so.3 implementation in the sysroot"
    ln -sf "$impl" "$lib/lib$name.so.3"
  done
  # Absolute symlinks inside the sysroot (e.g. lib*.so -> /lib/...) would point at the
  # host: make them relative to the sysroot.
  find "$SYSROOT" -xtype l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    target="$(readlink "$link")"
    [ -e "$SYSROOT$target" ] || continue
    ln -sfn "$(realpath --relative-to="$(dirname "$link")" "$SYSROOT$target")" "$link"
  done
  echo "${SYSROOT_PACKAGES[*]}" >"$SYSROOT/.stamp-$SYSROOT_VERSION"
fi
mkdir -p "$DEPS"
ln -sfn "$SYSROOT" "$DEPS/sysroot-arm64"

# ---------------------------------------------------------------- ONNX Runtime arm64
ORT_DIR="$DEPS/onnxruntime-arm64"
if [ ! -f "$ORT_DIR/.stamp-$ORT_VERSION" ]; then
  tgz="$CACHE/onnxruntime-node-$ORT_VERSION.tgz"
  [ -s "$tgz" ] || die "$tgz missing (scripts/setup-deps.sh fetches it)"
  rm -rf "$ORT_DIR"
  mkdir -p "$ORT_DIR/lib" "$ORT_DIR/include"
  tmp="$(mktemp -d)"
  tar -xzf "$tgz" -C "$tmp" package/bin/napi-v6/linux/arm64/ ||
    die "$tgz has no bin/napi-v6/linux/arm64 (unexpected package layout)"
  cp "$tmp"/package/bin/napi-v6/linux/arm64/libonnxruntime.so.1* "$ORT_DIR/lib/"
  rm -rf "$tmp"
  real="$(ls "$ORT_DIR"/lib/libonnxruntime.so.1* | head -n1)"
  ln -sf "$(basename "$real")" "$ORT_DIR/lib/libonnxruntime.so"
  cp "$DEPS"/onnxruntime/include/*.h "$ORT_DIR/include/"
  echo "onnxruntime-node $ORT_VERSION arm64" >"$ORT_DIR/.stamp-$ORT_VERSION"
  log "ONNX Runtime arm64 ready in $ORT_DIR"
fi

# ---------------------------------------------------------------- qemu-user (trixie, static)
QEMU_DIR="$DEPS/qemu"
if [ ! -x "$QEMU_DIR/qemu-aarch64" ]; then
  deb="$(ls "$CACHE"/qemu-user_*.deb 2>/dev/null | head -n1 || true)"
  if [ -z "$deb" ]; then
    private_apt_init trixie amd64 "$CACHE/apt-trixie" ||
      die "cannot read a Debian mirror from /etc/apt/sources.list(.d)"
    log "fetching qemu-user from the trixie suite"
    private_apt_update || die "private apt update for trixie failed"
    private_apt_download "$CACHE" qemu-user || die "apt-get download qemu-user (trixie) failed"
    deb="$(ls "$CACHE"/qemu-user_*.deb | head -n1)"
  fi
  tmp="$(mktemp -d)"
  dpkg-deb -x "$deb" "$tmp"
  bin="$(find "$tmp" -type f \( -name qemu-aarch64 -o -name qemu-aarch64-static \) | head -n1)"
  [ -n "$bin" ] || die "$deb contains no qemu-aarch64"
  file -L "$bin" | grep -qE 'static(-pie)? linked|statically linked' || die "$bin in $deb is not statically linked"
  mkdir -p "$QEMU_DIR"
  install -m 0755 "$bin" "$QEMU_DIR/qemu-aarch64"
  rm -rf "$tmp"
  log "qemu-aarch64 ($(basename "$deb")) ready in $QEMU_DIR"
fi
