# SPDX-License-Identifier: Apache-2.0
"""Random mutations of valid requests for bench/attack.py (Python standard library only).

A Mutator draws a valid request (a Template: image predict as raw JPEG/PNG or multipart, KServe
JSON or binary infer, metadata GETs) and damages it with a seeded random.Random: bit flips,
byte insertions and deletions, truncations, splices between bodies of different kinds, header
mutations (Content-Length, Content-Type, boundary, Inference-Header-Content-Length, Host,
request line) and damage to the raw bytes. Each Mutant says what the server owes it:

- due: the request is complete and framed (or its framing is invalid, which RFC 9112 §6.3
  answers with 400), so a response is owed; a dropped connection is a finding;
- single: exactly one response is owed (the body cannot have been read as a second request).

judge() turns an exchange into findings: a malformed response, a status >= 500 other than
503, an error without a JSON {"error": ...} body, a 200 JSON answer that is not JSON, a
missing or duplicated response, or a connection held open after the request ended."""
import attacklib
from attacklib import request_bytes


class Template:
    def __init__(self, name, kind, method, target, headers, body=b""):
        self.name, self.kind, self.method, self.target = name, kind, method, target
        self.headers, self.body = list(headers), body


class Mutant:
    def __init__(self, name, data, due=True, single=True, head_only=False):
        self.name, self.data, self.due, self.single, self.head_only = (
            name, data, due, single, head_only)
        self.family = ""  # set by Mutator.next: body, splice, content-type, ...


def templates(model, bus, zidane, small_png, kserve_json_body, kserve_bin):
    """The valid requests mutations start from (Content-Length is added when sending)."""
    predict = f"/v1/models/{model}/predict"
    host = ("Host", "127.0.0.1")
    form, form_type = attacklib.multipart([("note", None, None, b"attack"),
                                           ("image", "zidane.jpg", "image/jpeg", zidane)])
    bin_body, bin_header = kserve_bin
    return [
        Template("jpeg", "image", "POST", predict, [host, ("Content-Type", "image/jpeg")], zidane),
        Template("jpeg-query", "image", "POST",
                 predict + "?conf=0.3&iou=0.6&max_det=50&classes=0,5&agnostic=0",
                 [host, ("Content-Type", "image/jpeg")], bus),
        Template("png", "image", "POST", predict, [host, ("Content-Type", "image/png")],
                 small_png),
        Template("png-annotate", "image", "POST", predict + "?annotate=1",
                 [host, ("Content-Type", "application/octet-stream")], small_png),
        Template("multipart", "multipart", "POST", predict, [host, ("Content-Type", form_type)],
                 form),
        Template("kserve-json", "json", "POST", f"/v2/models/{model}/infer",
                 [host, ("Content-Type", "application/json")], kserve_json_body),
        Template("kserve-binary", "binary", "POST", f"/v2/models/{model}/versions/1/infer",
                 [host, ("Content-Type", "application/octet-stream"),
                  ("Inference-Header-Content-Length", str(bin_header))], bin_body),
        Template("get-model", "get", "GET", f"/v2/models/{model}", [host]),
        Template("get-ready", "get", "GET", f"/v2/models/{model}/ready", [host]),
        Template("get-health", "get", "GET", "/v2/health/ready", [host]),
        Template("get-server", "get", "GET", "/v2", [host]),
        Template("get-metrics", "get", "GET", "/metrics", [host]),
    ]


# How often each template is drawn: image bodies most, the large KServe bodies less (each
# costs an inference and megabytes of parsing), GETs for the request line and headers.
WEIGHTS = {"jpeg": 4, "jpeg-query": 2, "png": 4, "png-annotate": 1, "multipart": 4,
           "kserve-json": 1, "kserve-binary": 2, "get-model": 1, "get-ready": 1,
           "get-health": 1, "get-server": 1, "get-metrics": 1}

TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xff\xd8", b"\xff\xd9",
          b"\r\n", b"\r\n\r\n", b"--", b"-1", b"1e999", b"NaN", b"null", b"\\u0000",
          b"99999999999999999999", b"%00", b"\xef\xbb\xbf"]


class Mutator:
    def __init__(self, rng, temps):
        self.rng, self.temps = rng, temps
        self.weighted = [t for t in temps for _ in range(WEIGHTS.get(t.name, 1))]

    # -- positions and bytes ------------------------------------------------------------------

    def pos(self, n):
        """A position in [0, n], biased to the first 512 and last 256 bytes, where the
        structure (JSON keys, image headers, multipart heads) lives."""
        r = self.rng.random()
        if n == 0:
            return 0
        if r < 0.6:
            return self.rng.randrange(min(n, 512) + 1)
        if r < 0.75:
            return n - self.rng.randrange(min(n, 256) + 1)
        return self.rng.randrange(n + 1)

    def junk(self):
        if self.rng.random() < 0.5:
            return self.rng.choice(TOKENS)
        return bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 65)))

    # -- body mutations: framing intact, one response owed --------------------------------------

    def flip(self, body):
        b = bytearray(body)
        k = self.rng.choice([1, 1, 2, 4, 8, 32])
        for _ in range(k if b else 0):
            i = min(self.pos(len(b)), len(b) - 1)
            b[i] ^= 1 << self.rng.randrange(8)
        return bytes(b), f"flip{k}"

    def insert(self, body):
        i = self.pos(len(body))
        return body[:i] + self.junk() + body[i:], "insert"

    def delete(self, body):
        i = self.pos(len(body))
        return body[:i] + body[i + self.rng.randrange(1, 257):], "delete"

    def truncate(self, body):
        return body[:self.pos(len(body))], "truncate"

    def duplicate(self, body):
        i, j = self.pos(len(body)), self.pos(len(body))
        i, j = min(i, j), max(i, j)
        k = self.pos(len(body))
        return body[:k] + body[i:j][:4096] + body[k:], "duplicate"

    def body_mutant(self, t):
        op = self.rng.choice([self.flip, self.flip, self.insert, self.delete, self.truncate,
                              self.duplicate])
        body, what = op(t.body)
        return Mutant(f"{t.name}:{what}", request_bytes(t.method, t.target, t.headers, body))

    def splice(self, t):
        """The head of this body joined to the tail of another kind's body, sent with either
        request's line and headers."""
        others = [o for o in self.temps if o.body and o.kind != t.kind]
        o = self.rng.choice(others)
        body = t.body[:self.pos(len(t.body))] + o.body[self.pos(len(o.body)):]
        carrier = t if self.rng.random() < 0.5 else o
        return Mutant(f"{t.name}+{o.name}:splice",
                      request_bytes(carrier.method, carrier.target, carrier.headers, body))

    # -- header mutations ---------------------------------------------------------------------

    def set_header(self, headers, name, value):
        out = [(k, v) for k, v in headers if k.lower() != name.lower()]
        return out + ([(name, value)] if value is not None else [])

    def content_type(self, t):
        boundary = "attackBoundary7MA4YWxk"
        value = self.rng.choice([
            None, "", "image/jpeg", "image/png", "application/json", "text/plain",
            "application/octet-stream", "multipart/form-data",
            f"multipart/form-data; boundary={boundary}x",
            f'multipart/form-data; boundary="{boundary}"',
            f"multipart/form-data; boundary={boundary}; boundary={boundary}",
            "multipart/form-data; boundary=", "multipart/form-data; boundary=" + "b" * 71,
            "image/jpeg; charset=\x7f", "IMAGE/JPEG ; q=1", "x" * 3000, "\xff\xfe/\x00"])
        headers = self.set_header(t.headers, "Content-Type", value)
        return Mutant(f"{t.name}:content-type={str(value)[:40]!r}",
                      request_bytes(t.method, t.target, headers, t.body))

    def content_length(self, t):
        """Content-Length duplicated, garbled, wrong or missing. (lines, due, single, what):
        an invalid length owes a 400 (RFC 9112 §6.3); a longer one leaves the server
        waiting for bytes that never come; a shorter or missing one makes the rest of the
        body a next request."""
        n = len(t.body)
        head = request_bytes(t.method, t.target, t.headers, b"", content_length=False)[:-2]
        bad = self.rng.choice(["-1", "+%d" % n, "0x10", "1e3", "", "%d %d" % (n, n),
                               "99999999999999999999999", "%d," % n, "\x00"])
        choices = [
            (f"Content-Length: {n}\r\nContent-Length: {n}\r\n", True, True, "dup-same"),
            (f"Content-Length: {n}\r\nContent-Length: {n + 1}\r\n", True, True,
             "dup-different"),
            (f"Content-Length: {bad}\r\n", True, True, f"garbled={bad!r}"),
            (f"Content-Length: {n + self.rng.randrange(1, 5000)}\r\n", False, False, "longer"),
            (f"Content-Length: {self.rng.randrange(n + 1)}\r\n", True, False, "shorter"),
            ("", True, False, "missing"),
            (f"Content-Length : {n}\r\n", False, False, "space-before-colon"),
            (f"Content-Length: {n}\r\n X-Folded: 1\r\n", False, False, "obs-fold"),
        ]
        cl, due, single, what = self.rng.choice(choices)
        data = head + cl.encode("latin-1") + b"\r\n" + t.body
        return Mutant(f"{t.name}:content-length-{what}", data, due=due, single=single)

    def other_header(self, t):
        choice = self.rng.randrange(6)
        headers = list(t.headers)
        if choice == 0:
            headers, what = self.set_header(headers, "Host", None), "no-host"
        elif choice == 1:
            headers, what = headers + [("Host", "127.0.0.2")], "two-hosts"
        elif choice == 2:
            value = self.rng.choice(["", "-1", "abc", "99999999999999999999",
                                     str(self.rng.randrange(0, len(t.body) + 2))])
            headers = self.set_header(headers, "Inference-Header-Content-Length", value)
            what = f"ihcl={value!r}"
        elif choice == 3:
            value = self.rng.choice(["", "0", "-5", "abc", "99999999999", "1"])
            headers, what = headers + [("X-Request-Timeout-Ms", value)], f"timeout={value!r}"
        elif choice == 4:
            size = self.rng.choice([100, 5000, 20000])
            headers, what = headers + [("X-Long", "v" * size)], f"long-header-{size}"
        else:
            value = self.junk().decode("latin-1")
            headers, what = headers + [("X-Request-Id", value)], "request-id"
            if "\r" in value or "\n" in value:
                # A CR or LF ends the header early: the framing is no longer the one we meant.
                return Mutant(f"{t.name}:{what}-crlf",
                              request_bytes(t.method, t.target, headers, t.body),
                              due=False, single=False)
        return Mutant(f"{t.name}:{what}", request_bytes(t.method, t.target, headers, t.body))

    def request_line(self, t):
        choice = self.rng.randrange(4)
        method, target, version = t.method, t.target, "HTTP/1.1"
        if choice == 0:
            method = self.rng.choice(["GET", "PUT", "DELETE", "OPTIONS", "HEAD", "post", "PATCH",
                                      "BREW", "G\x00T", "POST POST"])
        elif choice == 1:
            i = self.pos(len(target))
            piece = self.rng.choice(["%00", "%zz", "%", "/..", "//", "?", "&&=", "#frag", "%2F",
                                     "?conf=2", "?imgsz=999999", "?classes=,", "?max_det=-1",
                                     "?annotate=maybe", "\x7f", " ", "x" * 20000])
            target = target[:i] + piece + target[i:]
        elif choice == 2:
            version = self.rng.choice(["HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/1",
                                       "http/1.1", "HTTP/1.1 x"])
        else:
            target = self.rng.choice(["*", "http://127.0.0.1" + target, "127.0.0.1:80",
                                      target.replace("/", "\\"), ""])
        line = f"{method} {target} {version}"
        head = "\r\n".join([line] + [f"{k}: {v}" for k, v in t.headers])
        if t.body or t.method == "POST":
            head += f"\r\nContent-Length: {len(t.body)}"
        data = (head + "\r\n\r\n").encode("latin-1") + t.body
        # A malformed line may not let the server find the body's end: only a parseable line
        # with the original framing owes one response.
        clean = (" " not in target and "\x00" not in method and " " not in method
                 and version in ("HTTP/1.0", "HTTP/1.1"))
        return Mutant(f"{t.name}:line={line[:60]!r}", data, due=clean, single=clean,
                      head_only=method == "HEAD")

    # -- raw damage: anything may happen, but never a 5xx or a malformed answer ---------------

    def raw(self, t):
        data = request_bytes(t.method, t.target, t.headers, t.body)
        choice = self.rng.randrange(3)
        if choice == 0:
            b = bytearray(data)
            for _ in range(self.rng.choice([1, 2, 8])):
                i = self.rng.randrange(min(len(b), 400))  # in or near the head
                b[i] ^= 1 << self.rng.randrange(8)
            data, what = bytes(b), "raw-flip"
        elif choice == 1:
            data, what = data[:self.rng.randrange(len(data))], "raw-truncate"
        else:
            i = self.rng.randrange(min(len(data), 400))
            data, what = data[:i] + self.junk() + data[i:], "raw-insert"
        return Mutant(f"{t.name}:{what}", data, due=False, single=False)

    def next(self):
        t = self.rng.choice(self.weighted)
        r = self.rng.random()
        if t.body and r < 0.45:
            m, m.family = self.body_mutant(t), "body"
        elif t.body and r < 0.55:
            m, m.family = self.splice(t), "splice"
        elif r < 0.65:
            m, m.family = self.content_type(t), "content-type"
        elif r < 0.75:
            m, m.family = self.content_length(t), "content-length"
        elif r < 0.83:
            m, m.family = self.other_header(t), "header"
        elif r < 0.92:
            m, m.family = self.request_line(t), "request-line"
        else:
            m, m.family = self.raw(t), "raw"
        return m


def judge(m, x):
    """Problems with the server's answer `x` to mutant `m` (empty when it held)."""
    problems = []
    if x.refused:
        return ["connection refused (server down?)"]
    if x.problem:
        problems.append(f"malformed response: {x.problem}")
    for r in x.responses:
        if r.status >= 500 and r.status != 503:
            problems.append(f"status {r.status}: {r.describe()}")
        if r.status >= 400 and not m.head_only:
            doc = r.json()
            if not isinstance(doc, dict) or not isinstance(doc.get("error"), str):
                problems.append(f"error {r.status} without a JSON {{\"error\": ...}} body: "
                                f"{r.describe()}")
        elif r.status == 200 and not m.head_only:
            ctype = (r.header("content-type") or "").lower()
            if ctype.startswith("application/json") and r.json() is None:
                problems.append(f"200 with a body that is not JSON: {r.describe()}")
    if m.due and not x.responses and not x.problem:
        how = "held open" if x.timed_out else "reset" if x.reset else "closed"
        problems.append(f"no response to a complete request (connection {how} after "
                        f"{x.elapsed:.1f} s)")
    if m.single and len(x.responses) > 1:
        problems.append(f"{len(x.responses)} responses to one request: "
                        + ", ".join(str(r.status) for r in x.responses))
    if not m.due and x.timed_out:
        problems.append(f"connection still open {x.elapsed:.1f} s after the request ended")
    return problems


def self_test():
    """judge() and parse_responses() on made-up answers: each check must be able to fail.
    Returns the list of checks that did not behave (empty when all did)."""
    ok_json = b'{"error":"bad"}'

    def resp(status, body, extra=""):
        return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def x(raw, closed=True, timed_out=False):
        e = attacklib.Exchange()
        e.raw, e.closed, e.timed_out = raw, closed, timed_out
        e.responses, e.problem = attacklib.parse_responses(raw)
        return e

    due, loose = Mutant("due", b""), Mutant("loose", b"", due=False, single=False)
    cases = [
        ("clean 400", judge(due, x(resp(400, ok_json))), False),
        ("500 is a finding", judge(due, x(resp(500, ok_json))), True),
        ("503 is allowed", judge(due, x(resp(503, ok_json))), False),
        ("error without JSON", judge(due, x(resp(400, b"oops"))), True),
        ("200 JSON that is not JSON", judge(due, x(resp(200, b"{"))), True),
        ("bare NaN is not JSON", judge(due, x(resp(200, b'{"a":NaN}'))), True),
        ("body cut short", judge(due, x(resp(400, ok_json)[:-3])), True),
        ("bad status line", judge(due, x(b"HTTP/1.1 2000 OK\r\n\r\n")), True),
        ("no Content-Length", judge(due, x(b"HTTP/1.1 400 X\r\n\r\n" + ok_json)), True),
        ("trailing garbage", judge(due, x(resp(400, ok_json) + b"junk")), True),
        ("dropped while due", judge(due, x(b"")), True),
        ("dropped while not due", judge(loose, x(b"")), False),
        ("held open while not due", judge(loose, x(b"", closed=False, timed_out=True)), True),
        ("two answers to one", judge(due, x(resp(400, ok_json) * 2)), True),
        ("two answers allowed", judge(loose, x(resp(400, ok_json) * 2)), False),
    ]
    return [name for name, problems, want in cases if bool(problems) != want]
