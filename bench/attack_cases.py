# SPDX-License-Identifier: Apache-2.0
"""The replay cases of bench/attack.py: the known-bad requests of issue 12, each family a
function of the attack Session that records one result per case with its expected outcome
(held, FAILED with a finding and the request saved, or n/a when the binary lacks a feature)."""
import array
import re
import socket
import time

import attacklib
from attacklib import request_bytes

PER_CLIENT_FLAG = "--max-connections-per-client"

HOST = [("Host", "127.0.0.1")]


def answer(x, crash):
    """A one-line description of what came back."""
    if crash:
        return f"server crashed ({crash})"
    if x.problem:
        return f"malformed response: {x.problem}"
    if not x.responses:
        return f"no response ({x.outcome()}, {x.elapsed:.1f} s)"
    return "; ".join(r.describe() for r in x.responses)


def expect(s, name, expected, data, statuses, check=None, **kw):
    """Sends `data`; the case holds when exactly one well-formed response with a status in
    `statuses` comes back (and check(response) returns None instead of a complaint)."""
    x, crash = s.send(name, data, **kw)
    detail = answer(x, crash)
    held = (not crash and not x.problem and len(x.responses) == 1
            and x.responses[0].status in statuses)
    complaint = None
    if held and x.responses[0].status >= 400:
        doc = x.responses[0].json()
        if not isinstance(doc, dict) or not isinstance(doc.get("error"), str):
            complaint = "an error without a JSON {\"error\": ...} body"
    if held and check is not None and complaint is None:
        complaint = check(x.responses[0])
    if complaint:
        held, detail = False, f"{detail} ({complaint})"
    s.case(name, expected, held, detail, data, crashed=bool(crash))
    return x


def predict_request(s, body, query="", ctype="image/jpeg"):
    return request_bytes("POST", f"/v1/models/{s.model}/predict{query}",
                         HOST + [("Content-Type", ctype)], body)


def infer_request(s, body):
    return request_bytes("POST", f"/v2/models/{s.model}/infer",
                         HOST + [("Content-Type", "application/json")], body)


def case_exif(s):
    """Exif IFD offsets that wrap a 32-bit bounds check, both byte orders, JSON and annotate."""
    def check(r):
        if r.status == 200 and r.header("content-type") == "image/jpeg":
            return None if r.body[:2] == b"\xff\xd8" else "annotated answer is not a JPEG"
        doc = r.json()
        if r.status == 200 and not (isinstance(doc, dict) and isinstance(doc.get("detections"),
                                                                          list)):
            return "200 without detections"
        return None
    for little in (True, False):
        for offset in (0xFFFFFFFE, 0xFFFFFFFF):
            jpeg = attacklib.exif_jpeg(s.bus, little, offset)
            for query in ("", "?annotate=1"):
                name = f"exif-{'II' if little else 'MM'}-{offset:08X}{'-annotate' if query else ''}"
                expect(s, name, "200 (orientation ignored) or 4xx, server stays up",
                       predict_request(s, jpeg, query), {200} | set(range(400, 500)), check,
                       timeout=60)


def case_json(s):
    """100,000-deep JSON in data, shape, parameters and binary_data_size; 1e400 in data."""
    depth = 100000
    bodies = {
        # shape [1,1,1,1]: the element count matches, so the element itself is looked at
        "deep-json-data": attacklib.kserve_json(
            shape=(1, 1, 1, 1), data="[" + attacklib.nested(depth, "object") + "]"),
        "deep-json-shape": attacklib.kserve_json(shape=attacklib.nested(depth, "array", "1")),
        "deep-json-parameters": (
            b'{"id":"attack","parameters":' + attacklib.nested(depth, "object").encode()
            + b',"inputs":[{"name":"images","datatype":"FP32","shape":[1,3,640,640],'
              b'"data":[0]}]}'),
        "deep-json-binary_data_size": attacklib.kserve_json(
            data=None, parameters='{"binary_data_size":' + attacklib.nested(depth) + "}"),
        "json-1e400": attacklib.kserve_json(data="[1e400]"),
    }
    for name, body in bodies.items():
        expect(s, name, "400", infer_request(s, body), {400}, timeout=60)


def case_nonfinite(s):
    """NaN and infinite inputs make non-finite outputs: a JSON answer must encode them in a
    defined way (200) or name the cause (4xx), never 500."""
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        tensor = array.array("f", [value]) * (3 * 640 * 640)
        body, header_len = attacklib.kserve_binary(tensor.tobytes(), binary_output=False)
        data = request_bytes("POST", f"/v2/models/{s.model}/infer",
                             HOST + [("Content-Type", "application/octet-stream"),
                                     ("Inference-Header-Content-Length", str(header_len))], body)

        def check(r):
            return None if r.status != 200 or isinstance(r.json(), dict) else \
                "200 whose body is not JSON"
        expect(s, f"kserve-{name}-input-json-output", "200 with valid JSON, or 4xx", data,
               {200} | set(range(400, 500)), check, timeout=60)


def case_smuggling(s):
    """Transfer-Encoding the server cannot frame: one POST, one answer, connection closed."""
    smuggled = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    variants = [("gzip", [("Transfer-Encoding", "gzip")], smuggled),
                ("identity", [("Transfer-Encoding", "identity")], smuggled),
                ("chunked-gzip", [("Transfer-Encoding", "chunked, gzip")], smuggled),
                ("chunked-chunked", [("Transfer-Encoding", "chunked, chunked")], smuggled),
                ("gzip-chunked", [("Transfer-Encoding", "gzip, chunked")], chunked + smuggled),
                ("te-and-cl", [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
                 b"0\r\n\r\n" + smuggled)]
    for name, te, body in variants:
        data = request_bytes("POST", f"/v1/models/{s.model}/predict",
                             HOST + [("Content-Type", "image/jpeg")] + te, body,
                             content_length=False)
        case = f"te-{name}"
        x, crash = s.send(case, data, half_close=False, timeout=10, linger=2.0)
        statuses = [r.status for r in x.responses]
        held = (not crash and not x.problem and len(statuses) == 1 and statuses[0] in (400, 501)
                and x.closed)
        detail = answer(x, crash) + ("" if crash else
                                     "; connection " + ("closed" if x.closed else "left open"))
        s.case(case, "one response, 400 or 501, connection closed", held, detail, data,
               crashed=bool(crash))


def case_thin_images(s):
    """1x20000, 20000x1 and 8000x4 PNGs must be processed (letterbox side >= 1 px)."""
    for w, h in ((1, 20000), (20000, 1), (8000, 4)):
        def check(r, w=w, h=h):
            doc = r.json() if isinstance(r.json(), dict) else {}
            return None if (doc.get("width"), doc.get("height")) == (w, h) else \
                f"width/height {doc.get('width')}x{doc.get('height')}"
        expect(s, f"thin-png-{w}x{h}", f"200 with width {w}, height {h}",
               predict_request(s, attacklib.png(w, h), ctype="image/png"), {200}, check,
               timeout=60)


def case_corrupt_jpeg(s):
    """Corrupt JPEG data must be refused (422), not decoded into a partly grey image."""
    expect(s, "jpeg-truncated-eoi", "422",
           predict_request(s, attacklib.truncated_jpeg(s.bus)), {422}, timeout=60)
    expect(s, "jpeg-sof-width-6300", "422",
           predict_request(s, attacklib.sof_width_jpeg(s.bus, 6300)), {422}, timeout=60)


def case_nul(s):
    """A NUL in a path and in a JSON name: the error quotes past it, escaped."""
    def check(r):
        text = r.json().get("error") if isinstance(r.json(), dict) else None
        if not isinstance(text, str):
            return "no JSON error"
        if "TAIL" not in text:
            return "message cut at the NUL"
        if b"\x00" in r.body or not re.search(rb"\\(u0000|0|x00)", r.body):
            return "NUL not escaped"
        return None
    expected = "4xx whose error goes past the NUL, escaped"
    expect(s, "nul-in-path", expected,
           request_bytes("POST", f"/v2/models/{s.model}%00TAIL/infer", HOST, b"{}"),
           set(range(400, 500)), check)
    expect(s, "nul-in-json-name", expected,
           infer_request(s, attacklib.kserve_json(name="images\u0000TAIL", data="[0]")),
           set(range(400, 500)), check)
    expect(s, "nul-in-json-key", expected,
           infer_request(s, attacklib.kserve_json(shape=(1, 1, 1, 1),
                                                  data='[{"k\\u0000TAIL":1}]')),
           set(range(400, 500)), check)


def case_absolute_form(s):
    port = s.server.port
    expect(s, "absolute-form-target", "200",
           request_bytes("GET", f"http://127.0.0.1:{port}/v2/health/live",
                         [("Host", f"127.0.0.1:{port}")]), {200})


def case_slow_header(s):
    """Header bytes trickled forever: the server must close within read-timeout + margin."""
    limit = s.args.read_timeout + max(2.0, 0.5 * s.args.read_timeout)
    give_up = limit + 6.0
    name, expected = "slow-header", f"connection closed within {limit:.1f} s"
    s.sent += 1
    sock = attacklib.connect(s.server.port, 5.0)
    sent = bytearray(b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    start = time.monotonic()
    how = None
    try:
        sock.sendall(bytes(sent))
        while time.monotonic() - start < give_up:
            try:
                sock.settimeout(0.25)
                chunk = sock.recv(4096)
                how = "closed" if not chunk else "answered and closed" if \
                    _drain_to_eof(sock, time.monotonic() + 2.0) else "answered, left open"
                break
            except socket.timeout:
                pass
            except ConnectionResetError:
                how = "reset"
                break
            try:
                sock.sendall(b"x")
                sent += b"x"
            except (BrokenPipeError, ConnectionResetError):
                how = "reset"
                break
    finally:
        sock.close()
    took = time.monotonic() - start
    s.histogram["closed-no-answer" if how in ("closed", "reset") else how or "held"] += 1
    if how is None:
        detail = f"still open after {took:.1f} s"
    else:
        detail = f"{how} after {took:.1f} s"
    s.case(name, expected, how is not None and how != "answered, left open" and took <= limit,
           detail, bytes(sent))


def _drain_to_eof(sock, until):
    while time.monotonic() < until:
        try:
            sock.settimeout(max(0.01, until - time.monotonic()))
            if not sock.recv(4096):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


def case_per_client(s):
    """More connections from one client than --max-connections-per-client."""
    name = "per-client-connections"
    if not s.per_client_supported:
        s.case(name, "limit enforced", None,
               f"not applicable to this binary: `serve --help` has no {PER_CLIENT_FLAG}")
        return
    limit, extra = s.per_client_limit, 4
    expected = (f"{limit} connections served, {extra} more refused (503/429 or closed), "
                "a new one served once they close")
    time.sleep(0.5)  # let earlier connections finish closing on the server
    socks, results = [], []
    request = request_bytes("GET", "/v2/health/live", HOST)
    try:
        for i in range(limit + extra):
            s.sent += 1
            try:
                sock = attacklib.connect(s.server.port, 5.0)
            except OSError as e:
                results.append(f"connect failed: {e}")
                continue
            socks.append(sock)
            try:
                sock.sendall(request)
                results.append(_read_one(sock, 5.0))
            except (BrokenPipeError, ConnectionResetError):
                results.append("closed")
    finally:
        for sock in socks:
            sock.close()
    for r in results:
        s.histogram[r] += 1
    first, rest = results[:limit], results[limit:]
    ok_first = all(r == "200" for r in first)
    ok_rest = all(r in ("503", "429", "closed") for r in rest)
    after = "not tried"
    for _ in range(15):  # the server may take a moment to count the closed connections out
        time.sleep(0.2)
        x = attacklib.exchange(s.server.port, request, timeout=5.0)
        s.health_requests += 1
        after = x.outcome()
        if after == "200":
            break
    detail = f"first {limit}: {first}; beyond: {rest}; afterwards: {after}"
    s.case(name, expected, ok_first and ok_rest and after == "200", detail, request)


def _read_one(sock, timeout):
    """Reads one response on an open connection: its status, or 'closed'/'timeout'."""
    data, until = b"", time.monotonic() + timeout
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return "closed" if not data else "reset-mid-response"
        if not chunk:
            break
        data += chunk
        responses, _ = attacklib.parse_responses(data)
        if responses:
            return str(responses[0].status)
    return "closed" if not data else "timeout"


FAMILIES = [case_exif, case_json, case_nonfinite, case_smuggling, case_thin_images,
            case_corrupt_jpeg, case_nul, case_absolute_form, case_slow_header, case_per_client]
