# SPDX-License-Identifier: Apache-2.0
"""Starts `cvdeploy serve` on 127.0.0.1 (port 0) for the deployment checks and talks to it.

Server(binary, args) is a context manager: it starts the server, reads the port from its
`listening on` line, and on exit sends SIGTERM and waits (SIGKILL after 20 s). get() returns
(status, body text); https with a CA file and a Bearer token when given.
"""
import re
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request


class Server:
    def __init__(self, binary, args, cafile=None):
        self.binary, self.args, self.cafile = binary, list(args), cafile
        self.proc, self.port, self.lines = None, None, []
        self._listening = threading.Event()

    def __enter__(self):
        self.proc = subprocess.Popen([self.binary, "serve", *self.args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = re.search(r"listening on https?://127\.0\.0\.1:(\d+)", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self._listening.set()
        self._listening.set()

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait() if self.proc else None

    def log_tail(self, n=8):
        return " | ".join(self.lines[-n:])

    def get(self, path, token=None):
        scheme = "https" if self.cafile else "http"
        req = urllib.request.Request(f"{scheme}://127.0.0.1:{self.port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        ctx = None
        if self.cafile:
            ctx = ssl.create_default_context(cafile=self.cafile)
            ctx.check_hostname = False  # the certificate names localhost; we dial 127.0.0.1
        try:
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def wait_ready(self, timeout_s):
        """True once /v2/health/ready answers 200; False when the server exits or time is up."""
        self._listening.wait(timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.port and self.proc.poll() is None and time.monotonic() < deadline:
            try:
                if self.get("/v2/health/ready")[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False
