#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Stage "opencv" of the Dockerfile (docs/deploy.md, "Size"): builds OpenCV from Debian's own
# source package (bookworm's opencv 4.6.0+dfsg with Debian's patches, `apt-get source` from the
# image's mirror) with only what cvdeploy loads, and installs the four libraries into PREFIX/lib
# (default /opt/opencv).
#
# Why: Debian's libopencv-imgcodecs406 links GDAL and libopencv-videoio406 links FFmpeg and
# GStreamer, so the loader needs their whole closure (~300 MB) although the server never calls
# them. Same upstream version and the same Debian patches give the same SONAMEs
# (libopencv_core.so.406, ...) and ABI as the packages the build stage compiles against, so the
# binary runs on these libraries unchanged; the runtime stage checks that with `ldd -r`.
#
# Kept: core, imgproc (Debian's CPU baseline SSE2 and the default AVX/AVX2/AVX-512 dispatch, TBB
# as Debian), imgcodecs with JPEG, PNG, WebP, TIFF and the built-in formats (BMP, PNM, HDR...),
# videoio with its built-in MJPEG/AVI reader and V4L2 only. Left out: FFmpeg, GStreamer, GDAL,
# gphoto2, 1394, OpenEXR, JPEG 2000, OpenCL, LAPACK, Eigen, GUI. A video file other than MJPEG
# AVI cannot be opened in the image; image requests and the KServe v2 API are unaffected.
# With a ccache at /ccache (make image mounts the host's) a rebuild takes seconds.
set -euo pipefail

prefix="${1:-/opt/opencv}"
export DEBIAN_FRONTEND=noninteractive
log() { echo "image-opencv: $*" >&2; }

# deb-src beside every deb entry, in both formats: deb822 files (the official
# debian:bookworm-slim) and a one-line sources.list (the mmdebstrap base of make image).
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sed -i 's/^Types: deb$/Types: deb deb-src/' "$f"
done
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/cvdeploy-src.list
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build ccache dpkg-dev xz-utils \
  libjpeg62-turbo-dev libpng-dev libwebp-dev libtiff-dev zlib1g-dev libtbb-dev >/dev/null

work=/tmp/opencv
mkdir -p "$work"
cd "$work"
apt-get source -qq opencv >/dev/null 2>&1 || apt-get source opencv
src="$(find "$work" -maxdepth 1 -type d -name 'opencv-4.6.0*' | head -n1)"
[ -n "$src" ] || { log "error: expected Debian's opencv 4.6.0 source (SONAME 406)"; exit 1; }
log "building $(basename "$src") (core, imgproc, imgcodecs, videoio)"

launcher=()
if [ -d /ccache ] && [ -w /ccache ]; then
  export CCACHE_DIR=/ccache CCACHE_BASEDIR="$work" CCACHE_COMPILERCHECK=content
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
arch=()
# Debian's baseline on amd64 (debian/rules), so that the image runs wherever Debian's does.
[ "$(dpkg --print-architecture)" != amd64 ] || arch=(-DCPU_BASELINE=SSE2 -DCPU_BASELINE_DISABLE=SSE3)

cmake -S "$src" -B "$work/build" -G Ninja "${launcher[@]}" "${arch[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DCMAKE_INSTALL_RPATH='$ORIGIN' \
  -DBUILD_LIST=core,imgproc,imgcodecs,videoio -DBUILD_SHARED_LIBS=ON \
  -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_DOCS=OFF \
  -DBUILD_opencv_apps=OFF -DBUILD_JAVA=OFF -DBUILD_opencv_python2=OFF -DBUILD_opencv_python3=OFF \
  -DBUILD_JPEG=OFF -DBUILD_PNG=OFF -DBUILD_TIFF=OFF -DBUILD_WEBP=OFF -DBUILD_ZLIB=OFF \
  -DBUILD_OPENJPEG=OFF -DBUILD_OPENEXR=OFF -DBUILD_PROTOBUF=OFF -DBUILD_TBB=OFF -DBUILD_ITT=OFF \
  -DWITH_JPEG=ON -DWITH_PNG=ON -DWITH_TIFF=ON -DWITH_WEBP=ON -DWITH_TBB=ON -DWITH_V4L=ON \
  -DWITH_FFMPEG=OFF -DWITH_GSTREAMER=OFF -DWITH_GDAL=OFF -DWITH_GDCM=OFF -DWITH_1394=OFF \
  -DWITH_GPHOTO2=OFF -DWITH_OPENEXR=OFF -DWITH_OPENJPEG=OFF -DWITH_JASPER=OFF \
  -DWITH_OPENCL=OFF -DWITH_VA=OFF -DWITH_VA_INTEL=OFF -DWITH_IPP=OFF -DWITH_ITT=OFF \
  -DWITH_LAPACK=OFF -DWITH_EIGEN=OFF -DWITH_PROTOBUF=OFF -DWITH_GTK=OFF -DWITH_QT=OFF \
  -DWITH_OPENGL=OFF -DWITH_VTK=OFF -DWITH_ADE=OFF -DWITH_CAROTENE=OFF -DWITH_QUIRC=OFF \
  -DENABLE_PRECOMPILED_HEADERS=OFF -DBUILD_INFO_SKIP_TIMESTAMP=ON -DOPENCV_DOWNLOAD_TRIES_LIST= \
  -DOPENCV_GENERATE_PKGCONFIG=OFF >"$work/configure.log" ||
  { tail -n 40 "$work/configure.log"; exit 1; }
# CMake's summary lines ("--     To be built:   core imgcodecs ..."): what this build has.
grep -E '^-- +(To be built|Parallel framework|JPEG|PNG|TIFF|WEBP|v4l/v4l2|FFMPEG|GStreamer):' \
  "$work/configure.log" | sed 's/^-- */  /' >&2 || true
cmake --build "$work/build" -j "$(nproc)"
cmake --install "$work/build" >/dev/null
rm -rf "$work"
# PREFIX/runtime: one file per library under its SONAME, stripped, for the runtime stage.
mkdir -p "$prefix/runtime"
for m in core imgproc imgcodecs videoio; do
  cp -L "$prefix/lib/libopencv_$m.so.406" "$prefix/runtime/"
done
strip --strip-unneeded "$prefix"/runtime/*.so.406
ls -l "$prefix/runtime" >&2
