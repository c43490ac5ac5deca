# SPDX-License-Identifier: Apache-2.0
"""Building blocks of bench/attack.py (Python standard library only):

- a raw HTTP/1.1 client over loopback sockets that sends exact bytes and keeps what came back;
- a strict parser of the server's responses (status line, headers, Content-Length framing);
- the server under test: started as a child process (free port, readiness, RSS, restart,
  cleanup) or attached to by URL;
- builders of hostile payloads (Exif JPEGs, PNGs, nested JSON, KServe and multipart bodies).
"""
import ctypes
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import time
import urllib.parse
import zlib

LOOPBACK = "127.0.0.1"


# ---------------------------------------------------------------------------------------------
# Loopback guard


def loopback_port(url):
    """The port of an http://127.0.0.1:PORT URL; SystemExit for any other host or scheme."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname != LOOPBACK or parts.port is None:
        raise SystemExit(f"refusing {url!r}: only http://{LOOPBACK}:PORT is allowed "
                         "(the attack never leaves this machine)")
    return parts.port


# ---------------------------------------------------------------------------------------------
# Requests and responses


def request_bytes(method, target, headers, body=b"", content_length=True):
    """An HTTP/1.1 request; `headers` is a list of (name, value) sent in order, and a
    Content-Length for `body` is appended unless content_length is False."""
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers]
    if content_length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


class Response:
    def __init__(self, status, reason, headers, body):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def json(self):
        """The body as strict JSON (RFC 8259: no bare NaN or Infinity), or None."""
        try:
            return json.loads(self.body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError):
            return None

    def describe(self):
        text = self.body[:160].decode("utf-8", "replace")
        return f"{self.status} {text!r}"


STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) ([^\r\n]*)")


def parse_responses(data, head_only=False):
    """Splits the bytes a server sent into responses. Returns (responses, problem): problem is
    None when `data` is exactly a sequence of complete, well-formed responses, and otherwise
    says what is wrong (bad status line, bad header, bad or missing framing, trailing bytes)."""
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return out, f"incomplete response head at byte {pos}: {data[pos:pos + 80]!r}"
        lines = data[pos:end].split(b"\r\n")
        m = STATUS_LINE.fullmatch(lines[0])
        if not m:
            return out, f"malformed status line {lines[0][:80]!r}"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                return out, f"malformed header line {line[:80]!r}"
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
        status = int(m.group(1))
        pos = end + 4
        resp = Response(status, m.group(2).decode("latin-1"), headers, b"")
        if 100 <= status < 200:
            continue  # interim (100 Continue): the final response follows
        lengths = [v for k, v in headers if k.lower() == "content-length"]
        if resp.header("transfer-encoding"):
            return out, "response uses Transfer-Encoding (the server always sends Content-Length)"
        if head_only or status in (204, 304):
            out.append(resp)
            continue
        if len(lengths) != 1 or not lengths[0].isdigit():
            return out, f"response {status} without one valid Content-Length: {lengths}"
        n = int(lengths[0])
        if pos + n > len(data):
            return out, f"response {status} body cut: {len(data) - pos} of {n} bytes"
        resp.body = data[pos:pos + n]
        pos += n
        out.append(resp)
    return out, None


class Exchange:
    """What one connection gave back: the parsed responses, whether the server closed the
    connection (EOF or reset), a transport error, the elapsed seconds and the raw bytes."""

    def __init__(self):
        self.responses, self.problem = [], None
        self.closed, self.reset, self.timed_out, self.refused = False, False, False, False
        self.elapsed, self.raw = 0.0, b""

    def outcome(self):
        """One word for the status histogram."""
        if self.refused:
            return "refused"
        if self.problem:
            return "malformed"
        if self.responses:
            return str(self.responses[-1].status)
        if self.timed_out:
            return "no-answer-timeout"
        return "reset" if self.reset else "closed-no-answer"


def connect(port, timeout):
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def exchange(port, data, timeout=30.0, half_close=True, linger=0.0, head_only=False):
    """Sends `data` on a fresh connection and reads what comes back.

    half_close: shut our sending side after the request, so the server sees the end of the
    stream instead of waiting for more bytes; it then answers what it got and closes.
    Without it the connection stays open: reading stops `linger` seconds after the first
    complete response (or at `timeout`), and `closed` says whether the server closed it."""
    x = Exchange()
    start = time.monotonic()
    deadline = start + timeout
    try:
        s = connect(port, timeout)
    except ConnectionRefusedError:
        x.refused = True
        return x
    except OSError:
        x.refused = True
        return x
    chunks = []
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early (413, 431) and stopped reading; read its answer
        stop_at = deadline
        while True:
            left = stop_at - time.monotonic()
            if left <= 0:
                x.timed_out = stop_at == deadline
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                x.timed_out = stop_at == deadline
                break
            except ConnectionResetError:
                x.closed = x.reset = True
                break
            if not chunk:
                x.closed = True
                break
            chunks.append(chunk)
            if not half_close and stop_at == deadline:
                responses, _ = parse_responses(b"".join(chunks), head_only)
                if responses:
                    stop_at = min(deadline, time.monotonic() + linger)
    finally:
        s.close()
    x.raw = b"".join(chunks)
    x.elapsed = time.monotonic() - start
    x.responses, x.problem = parse_responses(x.raw, head_only)
    return x


# ---------------------------------------------------------------------------------------------
# The server under test


def rss_mb(pid):
    """VmRSS of a process in MB, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def _child_setup():
    """In the child: no core file (a crash is expected here and must end at once), and
    SIGTERM when the attack script dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Server:
    """`cvdeploy serve` on 127.0.0.1 with a free port, or an already running server (url).

    start() launches it and waits until /v2/health/ready is 200; stop() terminates it (kill
    after 10 s). Each start writes its stderr to OUT/serve-N.err."""

    def __init__(self, cli=None, args=(), out_dir=".", url=None):
        self.cli, self.args, self.out_dir = cli, list(args), out_dir
        self.proc, self.port, self.starts = None, None, 0
        self.attached = url is not None
        if url is not None:
            self.port = loopback_port(url)
        self.log_path = None

    def start(self, timeout=180.0):
        if self.attached:
            if not self.wait_ready(timeout):
                raise SystemExit(f"server at port {self.port} is not ready")
            return
        self.starts += 1
        self.log_path = os.path.join(self.out_dir, f"serve-{self.starts}.err")
        log = open(self.log_path, "w")
        cmd = [self.cli, "serve", "--host", LOOPBACK, "--port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
        log.close()
        deadline = time.monotonic() + timeout
        self.port = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode} while starting:\n"
                                 + self.log_tail())
            if self.port is None:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log_tail(100000))
                if m:
                    self.port = int(m.group(1))
            if self.port is not None and self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"server did not become ready within {timeout:.0f} s")

    def ready(self):
        x = exchange(self.port, request_bytes("GET", "/v2/health/ready", [("Host", "x")]),
                     timeout=5.0)
        return bool(x.responses) and x.responses[0].status == 200

    def live(self, tries=3):
        """True when GET /v2/health/live answers 200 (retried briefly: a dying process may
        still hold its listening socket for a moment)."""
        for i in range(tries):
            x = exchange(self.port, request_bytes("GET", "/v2/health/live", [("Host", "x")]),
                         timeout=5.0)
            if x.responses and x.responses[0].status == 200:
                return True
            time.sleep(0.2)
        return False

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return True
            time.sleep(0.2)
        return False

    def alive(self):
        """False once our child has exited (always True when attached: use health checks)."""
        return self.attached or (self.proc is not None and self.proc.poll() is None)

    def wait_exit(self, timeout):
        """The exit code when the child exits within `timeout`, else None."""
        if self.attached or self.proc is None:
            return None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def rss_mb(self):
        return rss_mb(self.proc.pid) if self.proc is not None and self.alive() else None

    def log_tail(self, n=2000):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.attached or self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def describe_exit(code):
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# ---------------------------------------------------------------------------------------------
# Payloads


def png(width, height, seed=0):
    """An RGB 8-bit PNG with a deterministic pattern, encoded with zlib only."""
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter: none
        for x in range(width):
            v = (x * 7 + y * 13 + seed) & 0xFF
            row += bytes((v, (v * 3) & 0xFF, 255 - v))
        rows.append(bytes(row))

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + chunk(b"IEND", b""))


def exif_jpeg(jpeg, little_endian, ifd_offset):
    """`jpeg` with an APP1 Exif segment right after SOI whose TIFF header points the first
    IFD at `ifd_offset` (and holds nothing else)."""
    assert jpeg[:2] == b"\xff\xd8"
    tiff = (b"II*\x00" + struct.pack("<I", ifd_offset) if little_endian
            else b"MM\x00*" + struct.pack(">I", ifd_offset))
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


def jpeg_segments(jpeg):
    """(marker, offset) of each segment before the entropy-coded data, SOS included."""
    out, i = [], 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker = jpeg[i + 1]
        out.append((marker, i))
        if marker == 0xDA:
            break
        i += 2 + struct.unpack(">H", jpeg[i + 2:i + 4])[0]
    return out


def truncated_jpeg(jpeg, keep=0.5):
    """The headers and the first `keep` of the entropy-coded data, then EOI."""
    sos = [off for marker, off in jpeg_segments(jpeg) if marker == 0xDA][0]
    cut = sos + int((len(jpeg) - sos) * keep)
    return jpeg[:cut] + b"\xff\xd9"


def sof_width_jpeg(jpeg, width):
    """`jpeg` whose frame header (SOF0/1/2) claims `width` pixels; the data is unchanged."""
    for marker, off in jpeg_segments(jpeg):
        if marker in (0xC0, 0xC1, 0xC2):
            return jpeg[:off + 7] + struct.pack(">H", width) + jpeg[off + 9:]
    raise ValueError("no SOF segment")


def jpeg_size(jpeg):
    """(width, height) from the frame header."""
    for marker, off in jpeg_segments(jpeg):
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", jpeg[off + 5:off + 9])
            return w, h
    raise ValueError("no SOF segment")


def nested(depth, kind="array", leaf="0"):
    """`depth` levels of [ ] (or {"a": }) around `leaf`, as text."""
    if kind == "array":
        return "[" * depth + leaf + "]" * depth
    return '{"a":' * depth + leaf + "}" * depth


def kserve_json(name="images", shape=(1, 3, 640, 640), data="0", parameters=None,
                outputs=None):
    """A KServe v2 JSON request; `data` is the JSON text of the data field (or None to
    leave it out); every other value is JSON text too, so that it can be hostile."""
    shape_text = shape if isinstance(shape, str) else json.dumps(list(shape))
    fields = [f'"name":{json.dumps(name)}', '"datatype":"FP32"', f'"shape":{shape_text}']
    if parameters is not None:
        fields.append(f'"parameters":{parameters}')
    if data is not None:
        fields.append(f'"data":{data}')
    doc = '{"id":"attack","inputs":[{' + ",".join(fields) + "}]"
    if outputs is not None:
        doc += f',"outputs":{outputs}'
    return (doc + "}").encode()


def kserve_zeros_json(count):
    """A valid JSON request for an FP32 [1,3,640,640] input of zeros (flat data)."""
    return kserve_json(data="[" + ",".join(["0"] * count) + "]")


def kserve_binary(tensor, shape=(1, 3, 640, 640), binary_output=True):
    """(body, header_length) of a binary-data request: a JSON header, then the raw bytes."""
    header = json.dumps({
        "id": "attack",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": list(shape),
                    "parameters": {"binary_data_size": len(tensor)}}],
        "outputs": [{"name": "output0", "parameters": {"binary_data": binary_output}}],
    }).encode()
    return header + tensor, len(header)


def multipart(fields, boundary="attackBoundary7MA4YWxk"):
    """(body, content_type) of multipart/form-data; fields: (name, filename, type, bytes)."""
    parts = []
    for name, filename, ctype, data in fields:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        parts.append(head.encode() + b"\r\n" + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
