#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the live-source tests need (tests/integration/stream_*): a real RTSP server on
# loopback (gst-rtsp-server through Python GObject introspection) encoding a test pattern as
# H.264. Idempotent: when everything is present it only checks and returns.
#
#  - gir1.2-gst-rtsp-server-1.0: GstRtspServer for Python (python3-gi)
#  - gstreamer1.0-plugins-base: videotestsrc, videoconvert
#  - gstreamer1.0-plugins-good: rtph264pay
#  - gstreamer1.0-plugins-ugly: x264enc (bookworm's H.264 encoder for GStreamer)
# Called by scripts/setup-deps.sh; can be run on its own.
set -euo pipefail

log() { echo "setup-streams: $*" >&2; }
die() { echo "setup-streams: error: $*" >&2; exit 1; }

PACKAGES=(python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly)
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt-packages.sh"
apt_install_missing "${PACKAGES[@]}"
