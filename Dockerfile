# SPDX-License-Identifier: Apache-2.0
# cvdeploy server image (docs/deploy.md, "Container image").
#
#   docker build -t cvdeploy .            # with a registry: BASE defaults to debian:bookworm-slim
#   make image                            # here: podman, local mmdebstrap base, no registry
#
# Stage "opencv": OpenCV 4.6 built from Debian's source package with only the modules and codecs
# cvdeploy uses (scripts/image-opencv.sh): Debian's binary packages link GDAL, FFmpeg and
# GStreamer, about 300 MB the server never calls. Same version and patches, same SONAMEs.
# Stage "build": the toolchain and -dev packages; compiles the CLI (tests off) and installs it
# with `cmake --install`. ONNX Runtime comes from the build context's .deps/onnxruntime when it
# is there (make image stages it, so the build needs no npm and no network beyond the Debian
# mirror); otherwise scripts/setup-deps.sh fetches it inside the build (needs npm and network).
# Stage "runtime": the binary, ONNX Runtime's .so and the four OpenCV libraries in
# /opt/cvdeploy/lib (the binary's RUNPATH is $ORIGIN/../lib), and only the small Debian runtime
# libraries those link; runs as uid 10001, works with a read-only root filesystem (+ tmpfs /tmp).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS opencv
COPY scripts/image-opencv.sh /usr/local/bin/image-opencv.sh
RUN /usr/local/bin/image-opencv.sh /opt/opencv

FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ccache \
      libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev \
      libboost1.74-dev libssl-dev libsodium-dev nlohmann-json3-dev libcli11-dev libspdlog-dev \
      libjpeg62-turbo-dev libonnx-dev libprotobuf-dev protobuf-compiler >/dev/null && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /work/cvdeploy
COPY . /work/cvdeploy
# make image mounts the host's ccache at /ccache (podman build -v); without it ccache is off.
# With it, a rebuild recompiles only what changed (the entries are the container's own: the
# host's builds hash differently and are not reused).
RUN set -eu; \
    if [ -f .deps/onnxruntime/include/onnxruntime_cxx_api.h ]; then \
      export ONNXRUNTIME_ROOT=/work/cvdeploy/.deps/onnxruntime; \
    else \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends npm ca-certificates curl >/dev/null; \
      scripts/setup-deps.sh; \
    fi; \
    launcher=""; \
    if [ -d /ccache ] && [ -w /ccache ]; then \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/work; \
      launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"; \
    fi; \
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCVDEPLOY_BUILD_TESTS=OFF \
      $launcher >/dev/null; \
    cmake --build build --target cvdeploy_cli; \
    cmake --install build --prefix /opt/cvdeploy >/dev/null; \
    strip /opt/cvdeploy/bin/cvdeploy; \
    mkdir -p /out/bin /out/lib; \
    cp /opt/cvdeploy/bin/cvdeploy /out/bin/; \
    cp -P /opt/cvdeploy/lib/libonnxruntime.so* /out/lib/

FROM ${BASE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# RUNPATH $ORIGIN/../lib: the binary finds ONNX Runtime and OpenCV beside it.
COPY --from=build /out/ /opt/cvdeploy/
COPY --from=opencv /opt/opencv/runtime/ /opt/cvdeploy/lib/
# The Debian runtime libraries the binary and the OpenCV build link (readelf -d NEEDED, mapped
# to packages with dpkg -S), without recommends or apt lists. The build fails if a library is
# missing or a symbol the binary needs is undefined (ldd -r: the OpenCV ABI check).
RUN set -eu; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends \
      libjpeg62-turbo libpng16-16 libwebp7 libtiff6 libtbb12 \
      libonnx1 libprotobuf32 libsodium23 libspdlog1.10 libssl3 >/dev/null; \
    ldd -r /opt/cvdeploy/bin/cvdeploy > /tmp/ldd.txt 2>&1 || true; \
    if grep -E 'not found|undefined symbol' /tmp/ldd.txt; then exit 1; fi; \
    /opt/cvdeploy/bin/cvdeploy --version; \
    apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /tmp/*; \
    groupadd --gid 10001 cvdeploy; \
    useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cvdeploy; \
    mkdir -p /models; chown 10001:10001 /models

ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=https://github.com/cvdeploy/cvdeploy
LABEL org.opencontainers.image.title="cvdeploy" \
      org.opencontainers.image.description="ONNX model server (KServe v2 + image endpoints)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Every serve flag is also an environment variable (CVDEPLOY_<FLAG>); the command line wins.
ENV PATH=/opt/cvdeploy/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CVDEPLOY_HOST=0.0.0.0 \
    CVDEPLOY_PORT=8080 \
    CVDEPLOY_MODEL_REPOSITORY=/models \
    CVDEPLOY_LOG_FORMAT=json \
    TMPDIR=/tmp
USER 10001:10001
WORKDIR /tmp
VOLUME ["/models"]
EXPOSE 8080
# The health check probes 127.0.0.1:$CVDEPLOY_PORT/v2/health/ready (https with
# CVDEPLOY_TLS_CERT): set the port through the environment, not only through the command line.
# SIGTERM: readiness turns false, new connections are refused, in-flight requests finish
# (CVDEPLOY_DRAIN_TIMEOUT, default 30 s), then exit 0. Give the engine a longer stop timeout.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["cvdeploy", "health", "--quiet", "--timeout", "4"]
ENTRYPOINT ["cvdeploy", "serve"]
