# SPDX-License-Identifier: Apache-2.0
# cvdeploy server image (docs/deploy.md, "Container image").
#
#   docker build -t cvdeploy .            # with a registry: BASE defaults to debian:bookworm-slim
#   make image                            # here: podman, local mmdebstrap base, no registry
#
# Stage "build": the toolchain and -dev packages; compiles the CLI (tests off) and installs it
# with `cmake --install`. ONNX Runtime comes from the build context's .deps/onnxruntime when it
# is there (make image stages it, so the build needs no npm and no network beyond the Debian
# mirror); otherwise scripts/setup-deps.sh fetches it inside the build (needs npm and network).
# Stage "runtime": only the Debian runtime libraries the binary links, the binary and ONNX
# Runtime's .so; runs as uid 10001, works with a read-only root filesystem (+ tmpfs /tmp).
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends \
      build-essential cmake ninja-build pkg-config ccache \
      libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev \
      libboost1.74-dev libssl-dev libsodium-dev nlohmann-json3-dev libcli11-dev libspdlog-dev \
      libjpeg62-turbo-dev libonnx-dev libprotobuf-dev protobuf-compiler >/dev/null && \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
# make image mounts the host's ccache at /ccache (podman build -v); without it ccache is off.
RUN set -eu; \
    if [ -f .deps/onnxruntime/include/onnxruntime_cxx_api.h ]; then \
      export ONNXRUNTIME_ROOT=/src/.deps/onnxruntime; \
    else \
      apt-get update -qq && apt-get install -y -qq --no-install-recommends npm ca-certificates curl >/dev/null; \
      scripts/setup-deps.sh; \
    fi; \
    launcher=""; \
    if [ -d /ccache ] && [ -w /ccache ]; then \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/src CCACHE_COMPILERCHECK=content; \
      launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"; \
    fi; \
    cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCVDEPLOY_BUILD_TESTS=OFF \
      $launcher >/dev/null; \
    cmake --build /build --target cvdeploy_cli; \
    cmake --install /build --prefix /opt/cvdeploy >/dev/null; \
    strip /opt/cvdeploy/bin/cvdeploy; \
    mkdir -p /out/bin /out/lib; \
    cp /opt/cvdeploy/bin/cvdeploy /out/bin/; \
    cp -P /opt/cvdeploy/lib/libonnxruntime.so* /out/lib/

FROM ${BASE} AS runtime
ARG DEBIAN_FRONTEND=noninteractive
# RUNPATH $ORIGIN/../lib: the binary finds ONNX Runtime beside it.
COPY --from=build /out/ /opt/cvdeploy/
# What the binary links (readelf -d NEEDED, mapped to packages with dpkg -S); their own
# dependencies come with them. No -dev packages, no recommends, no apt lists left behind.
# Then the list is pruned in the same layer: packages apt pulled in whose files the binary never
# loads (Debian's OpenCV depends on GDAL and FFmpeg, which drag in Mesa + LLVM, Perl, iso-codes,
# proj-data, ...) are purged with --force-depends. "Needed" is the ldd closure of the binary
# mapped to packages; the base image's packages are never touched; the build fails if anything
# is missing afterwards. (So `apt-get install` in an image built FROM this one first wants
# `apt-get -f install` to restore the pruned dependencies.)
RUN set -eu; \
    dpkg-query -W -f '${Package}\n' | sort -u > /tmp/base.txt; \
    apt-get update -qq; \
    apt-get install -y -qq --no-install-recommends \
      libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406 \
      libjpeg62-turbo libonnx1 libprotobuf32 libsodium23 libspdlog1.10 libssl3 >/dev/null; \
    libs=$(ldd /opt/cvdeploy/bin/cvdeploy | awk '$3 ~ /^\// {print $3}'); \
    set -f; patterns=""; for l in $libs; do patterns="$patterns */$(basename "$(readlink -f "$l")")"; done; \
    dpkg -S $patterns 2>/dev/null | cut -d: -f1 | tr ',' '\n' | tr -d ' ' | sort -u > /tmp/needed.txt; \
    dpkg-query -W -f '${Package}\n' | sort -u | comm -23 - /tmp/base.txt | comm -23 - /tmp/needed.txt > /tmp/prune.txt; \
    echo "runtime: keeping $(wc -l < /tmp/needed.txt) packages the binary loads, pruning $(wc -l < /tmp/prune.txt)"; \
    [ ! -s /tmp/prune.txt ] || dpkg --purge --force-depends $(cat /tmp/prune.txt) >/dev/null 2>&1 || \
      echo "runtime: dpkg --purge reported errors (the ldd check below decides)"; \
    set +f; \
    if ldd /opt/cvdeploy/bin/cvdeploy | grep -q 'not found'; then ldd /opt/cvdeploy/bin/cvdeploy | grep 'not found'; exit 1; fi; \
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
