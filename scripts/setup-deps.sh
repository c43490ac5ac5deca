#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything cvdeploy needs to build and test. Idempotent: when all is
# present it only checks and returns within a second or two.
#
#  - Debian packages through apt-get (only the missing ones).
#  - ONNX Runtime 1.30 into .deps/onnxruntime/{include,lib}:
#      library  : bin/napi-v6/linux/x64/libonnxruntime.so.1 out of `npm pack onnxruntime-node`
#                 (never `npm install`: its install script downloads at install time)
#      headers  : Debian package libonnxruntime-dev of the trixie suite, fetched with
#                 `apt-get download` through a private apt configuration whose mirror is
#                 read from this machine's Debian source configuration.
#    Downloads are cached under ${XDG_CACHE_HOME:-$HOME/.cache}/cvdeploy so a fresh
#    clone does not fetch them again. ONNXRUNTIME_ROOT=/path skips all of this.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/cvdeploy"
ORT_VERSION="${CVDEPLOY_ORT_VERSION:-1.30.0}"
log() { echo "setup-deps: $*" >&2; }
die() { echo "setup-deps: error: $*" >&2; exit 1; }

# --fuzz: also what the libFuzzer build needs (make fuzz): clang, its runtime libraries
# (libFuzzer, sanitizers) and lld.
FUZZ=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) FUZZ=1 ;;
    *) die "unknown option $arg (known: --fuzz)" ;;
  esac
done

# ---------------------------------------------------------------- Debian packages
PACKAGES=(
  build-essential cmake ninja-build pkg-config git clang-format
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev
  libboost1.74-dev libssl-dev libsodium-dev nlohmann-json3-dev libcli11-dev libspdlog-dev
  libjpeg62-turbo-dev python3 wrk curl openssl oathtool
  libonnx-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev
  swtpm tpm2-tools # software TPM 2.0 + tools: the key-sealing test (tpm_sealed_key_test.py)
)
# libtorch (1.13, CPU) for distill/finetune/qat (cvdeploy-train); CVDEPLOY_NO_TORCH=1 leaves it
# out and the build then has no training (CMake CVDEPLOY_TRAINING=AUTO).
[[ ${CVDEPLOY_NO_TORCH:-0} == 1 ]] || PACKAGES+=(libtorch-dev)
((FUZZ)) && PACKAGES+=(clang-14 libclang-rt-14-dev lld-14)
command -v npm >/dev/null || PACKAGES+=(npm) # `npm pack` fetches ONNX Runtime below: Debian's npm when none is on PATH
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${PACKAGES[@]}"

"$ROOT/scripts/setup-k8s.sh" # deployment checks (tests/deploy): yamllint, promtool, npm kubernetes-models
"$ROOT/scripts/setup-browser.sh" # dashboard browser test (tests/browser): chromium, npm puppeteer-core
"$ROOT/scripts/setup-streams.sh" # live-source tests: gst-rtsp-server, x264enc (RTSP on loopback)

# ---------------------------------------------------------------- ONNX Runtime
if [ -n "${ONNXRUNTIME_ROOT:-}" ]; then
  [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime_cxx_api.h" ] ||
    [ -f "$ONNXRUNTIME_ROOT/include/onnxruntime/onnxruntime_cxx_api.h" ] ||
    die "ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT has no include/onnxruntime_cxx_api.h"
  log "using ONNX Runtime from ONNXRUNTIME_ROOT=$ONNXRUNTIME_ROOT"
  exit 0
fi

ORT_DIR="$DEPS/onnxruntime"
STAMP="$ORT_DIR/.stamp-$ORT_VERSION"
if [ -f "$STAMP" ]; then exit 0; fi

mkdir -p "$CACHE" "$ORT_DIR/include" "$ORT_DIR/lib"

# Library from the npm tarball (npm pack only downloads; it runs no install script).
tgz="$CACHE/onnxruntime-node-$ORT_VERSION.tgz"
if [ ! -s "$tgz" ]; then
  log "fetching onnxruntime-node@$ORT_VERSION (npm pack)"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null 2>&1) ||
    die "npm pack onnxruntime-node@$ORT_VERSION failed (is the npm registry reachable?)"
  mv "$tmp"/onnxruntime-node-*.tgz "$tgz"
  rm -rf "$tmp"
fi
tmp="$(mktemp -d)"
tar -xzf "$tgz" -C "$tmp" package/bin/napi-v6/linux/x64/ ||
  die "$tgz has no bin/napi-v6/linux/x64 (unexpected package layout)"
cp "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1* "$ORT_DIR/lib/"
real="$(ls "$ORT_DIR"/lib/libonnxruntime.so.1* | head -n1)"
ln -sf "$(basename "$real")" "$ORT_DIR/lib/libonnxruntime.so"
# Execution-provider plugins shipped beside the library (CUDA/TensorRT), if any.
cp "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime_providers_*.so "$ORT_DIR/lib/" 2>/dev/null || true
rm -rf "$tmp"

# Headers from Debian trixie's libonnxruntime-dev via a private apt configuration
# (scripts/lib/private-apt.sh, shared with scripts/setup-edge.sh).
. "$ROOT/scripts/lib/private-apt.sh"
deb="$(ls "$CACHE"/libonnxruntime-dev_*.deb 2>/dev/null | head -n1 || true)"
if [ -z "$deb" ]; then
  private_apt_init trixie amd64 "$CACHE/apt-trixie" ||
    die "cannot read a Debian mirror from /etc/apt/sources.list(.d)"
  log "fetching libonnxruntime-dev headers from the trixie suite"
  private_apt_update || die "private apt update for trixie failed"
  private_apt_download "$CACHE" libonnxruntime-dev ||
    die "apt-get download libonnxruntime-dev (trixie) failed"
  deb="$(ls "$CACHE"/libonnxruntime-dev_*.deb | head -n1)"
fi
tmp="$(mktemp -d)"
dpkg-deb -x "$deb" "$tmp"
hdr="$(dirname "$(find "$tmp" -name onnxruntime_cxx_api.h | head -n1)")"
[ -d "$hdr" ] || die "$deb does not contain onnxruntime_cxx_api.h"
cp "$hdr"/*.h "$ORT_DIR/include/"
rm -rf "$tmp"

rm -f "$ORT_DIR"/.stamp-*
echo "onnxruntime-node $ORT_VERSION + $(basename "$deb")" >"$STAMP"
log "ONNX Runtime ready in $ORT_DIR"
