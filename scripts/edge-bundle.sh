#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make edge-bundle`: packs the aarch64 build (make edge) into one archive to copy to a device,
# BUILD/cvdeploy-edge-aarch64.tar.gz (docs/deploy.md, "Edge build (aarch64)"):
#
#   cvdeploy-edge-aarch64/bin/cvdeploy              stripped; RUNPATH $ORIGIN/../lib
#   cvdeploy-edge-aarch64/lib/libonnxruntime.so*    ONNX Runtime arm64 (one file + its link)
#   cvdeploy-edge-aarch64/README                    the Debian packages the device needs
#
# `cmake --install` lays out bin/ and lib/ (components cli and onnxruntime) and gives the binary
# its install RUNPATH, so the unpacked directory can live anywhere. The remaining libraries
# (OpenCV, OpenSSL, protobuf/ONNX, ...) come from the device's Debian 12 arm64 packages listed
# in README. Usage: scripts/edge-bundle.sh [BUILD_DIR] (default build-edge).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-edge}"
NAME=cvdeploy-edge-aarch64
log() { echo "edge-bundle: $*" >&2; }
die() { echo "edge-bundle: error: $*" >&2; exit 1; }

[ -x "$BUILD/cvdeploy" ] || die "$BUILD/cvdeploy missing: run make edge first"
file -b "$BUILD/cvdeploy" | grep -q aarch64 || die "$BUILD/cvdeploy is not an aarch64 binary"
strip=aarch64-linux-gnu-strip
command -v "$strip" >/dev/null || die "$strip missing: run scripts/setup-edge.sh"

# The Debian 12 (bookworm) arm64 runtime packages of the libraries the binary links besides
# ONNX Runtime (readelf -d NEEDED; their own dependencies come with them).
PACKAGES="libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406 \
libjpeg62-turbo libonnx1 libprotobuf32 libsodium23 libspdlog1.10 libssl3"

stage="$BUILD/bundle/$NAME"
rm -rf "$BUILD/bundle"
mkdir -p "$stage"
for component in cli onnxruntime; do
  cmake --install "$BUILD" --prefix "$stage" --component "$component" >/dev/null
done
[ -f "$stage/lib/libonnxruntime.so.1" ] || die "ONNX Runtime missing from the install (lib/)"
"$strip" --strip-unneeded "$stage/bin/cvdeploy"
# The unversioned link is for linking only; the binary needs libonnxruntime.so.1.
rm -f "$stage/lib/libonnxruntime.so"
version="$(sed -n 's/^project(cvdeploy VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")"
cat >"$stage/README" <<EOF
cvdeploy ${version:-} for aarch64 (arm64) Linux, Debian 12 (bookworm) userland.

Install the runtime libraries once, then run from wherever this directory lies
(bin/cvdeploy finds lib/ through its RUNPATH \$ORIGIN/../lib):

  sudo apt-get install --no-install-recommends \\
    $PACKAGES
  bin/cvdeploy predict --model MODEL.onnx --source IMAGE.jpg
  bin/cvdeploy serve --model MODEL.onnx --host 127.0.0.1 --port 8080
EOF
archive="$BUILD/$NAME.tar.gz"
tar -C "$BUILD/bundle" --owner=0 --group=0 --numeric-owner --sort=name -czf "$archive" "$NAME"
log "$archive: $(du -k "$archive" | cut -f1) KiB compressed," \
  "$(du -sk --apparent-size "$stage" | cut -f1) KiB unpacked"
