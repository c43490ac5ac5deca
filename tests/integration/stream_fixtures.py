#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live-stream fixtures on 127.0.0.1 for stream_sources_test.py, each run as a subprocess that
prints "ready PORT" once it listens:

  rtsp   PORT  gst-rtsp-server at rtsp://127.0.0.1:PORT/test: an endless H.264 test pattern
               (videotestsrc ! x264enc ! rtph264pay), 320x240 at 15 FPS.
  mjpeg  PORT  HTTP multipart/x-mixed-replace (MJPEG) at any path: --frames JPEG frames per
               connection at --fps (0 frames: endless), then the connection closes; after
               --connections connections (0: unlimited) the listener closes too (refused).
  silent PORT  accepts TCP connections and never answers.

Needs /usr/bin/python3 with python3-gi and gir1.2-gst-rtsp-server-1.0 for rtsp
(scripts/setup-streams.sh)."""
import argparse
import http.server
import socket
import socketserver
import sys
import threading
import time


def ready(port):
    print(f"ready {port}", flush=True)


def serve_rtsp(args):
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
        f"framerate={args.fps}/1 ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={args.fps} ! rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp: cannot listen on 127.0.0.1:{args.port}")
    ready(args.port)
    GLib.MainLoop().run()


def serve_mjpeg(args):
    with open(args.jpeg, "rb") as f:
        jpeg = f.read()
    served = {"connections": 0}
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *a):
            pass

        def do_GET(self):
            with lock:
                served["connections"] += 1
                last = args.connections and served["connections"] >= args.connections
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            n = 0
            try:
                while args.frames == 0 or n < args.frames:
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                     str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                    self.wfile.flush()
                    n += 1
                    time.sleep(1.0 / args.fps)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if last:  # no more connections: later attempts are refused
                threading.Thread(target=httpd.shutdown, daemon=True).start()

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    httpd = Server(("127.0.0.1", args.port), Handler)
    ready(httpd.server_address[1])
    httpd.serve_forever()
    httpd.server_close()
    time.sleep(3600)  # stay alive (refusing) until the test stops us


def serve_silent(args):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(16)
    ready(sock.getsockname()[1])
    held = []
    while True:
        conn, _ = sock.accept()
        held.append(conn)  # never answered, never closed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["rtsp", "mjpeg", "silent"])
    p.add_argument("port", type=int)
    p.add_argument("--fps", type=int, default=15)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--connections", type=int, default=0)
    p.add_argument("--jpeg", default="")
    args = p.parse_args()
    {"rtsp": serve_rtsp, "mjpeg": serve_mjpeg, "silent": serve_silent}[args.kind](args)


if __name__ == "__main__":
    main()
