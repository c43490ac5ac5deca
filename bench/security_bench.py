#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Measures what secure serving costs: TLS + API key + audit log against plain HTTP without auth.

    bench/security_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--model yolov8n-dq]
                            [--duration 20] [--rounds 3] [--concurrency 16] [--out DIR] [--smoke]

In one run, on one machine, two servers with the same model on 127.0.0.1:
  plain   `cvdeploy serve` (HTTP, no auth, no audit log), the baseline;
  secure  the same with --tls-cert/--tls-key, --keys-file (one inferencer key sent as
          `Authorization: Bearer`) and --audit-log (HMAC chain, signed checkpoints).
wrk POSTs bus.jpg to /v1/models/{model}/predict at --concurrency for --duration seconds, the
two servers taking turns for --rounds rounds (interleaved, so drift of the machine hits both).
A cheap authenticated route (GET /v2/models/{model}, no inference) is also timed at concurrency
1 on both, which shows the per-request cost of TLS + key check + audit entry undiluted by the
model. Target: secure throughput >= 95% of plain at --concurrency (medians over the rounds).
The audit log written by the secure server must pass `cvdeploy audit verify`. --smoke runs a
few seconds so CI keeps the script working; its timings mean nothing and the throughput
target is not checked (only that every request succeeded and the log verifies).
Exit status: 0 when every check passes, 1 otherwise.
"""
import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import ssl
import urllib.request

import benchlib
import serve_bench
from benchlib import run

LUA = """
wrk.method = "{method}"
{headers}
{body}
"""


def lua_script(path, method, headers, body_file=None):
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    body = ""
    if body_file:
        body = (f'local f = assert(io.open("{body_file}", "rb"))\n'
                "wrk.body = f:read(\"*a\")\nf:close()")
    with open(path, "w") as f:
        f.write(LUA.format(method=method, headers="\n".join(lines), body=body))
    return path


def machine():
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release()}


def start_server(cli, args, tmp, name, scheme, cafile=None):
    err_path = os.path.join(tmp, f"{name}.err")
    log = open(err_path, "w")
    proc = subprocess.Popen([cli, "serve", "--host", "127.0.0.1", "--port", "0",
                             "--access-log", ""] + args, stdout=subprocess.DEVNULL, stderr=log)
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    port = None
    deadline = time.time() + 120
    while time.time() < deadline:
        text = open(err_path).read()
        m = re.search(r"listening on https?://127\.0\.0\.1:(\d+)", text)
        if m and port is None:
            port = int(m.group(1))
        if port is not None:
            try:
                with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/v2/health/ready",
                                            timeout=5, context=context) as r:
                    if r.status == 200:
                        return proc, port
            except Exception:
                pass
        if proc.poll() is not None:
            raise SystemExit(f"{name} server exited: {text}")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{name} server did not become ready")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def wrk(url, script, connections, duration):
    proc = run(["wrk", "-t", str(min(2, connections)), "-c", str(connections), "-d",
                f"{duration}s", "--timeout", "30s", "--latency", "-s", script, url])
    # serve_bench's parser reads req/s, percentiles, non-2xx and socket errors.
    return serve_bench.parse_wrk(proc.stdout)


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", default="yolov8n-dq")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--out", default=None, help="write security_bench.json and .md here")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the metadata route on servers with one control at a time "
                         "(TLS only; TLS + key; TLS + key + audit with --audit-sync none)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (scripts/setup-deps.sh installs it)")
    if args.smoke:
        args.duration, args.rounds, args.concurrency = 2, 1, 4
    cli = args.cvdeploy
    model = os.path.join(args.assets, "models", args.model + ".onnx")
    bus = os.path.join(args.assets, "images", "bus.jpg")
    tmp = tempfile.mkdtemp(prefix="cvdeploy-security-bench-")
    checks = benchlib.Checks()
    try:
        tls = os.path.join(tmp, "tls")
        run([cli, "tls", "selfsigned", "--out", tls])
        keys = os.path.join(tmp, "keys.json")
        key = run([cli, "keys", "create", "--name", "bench", "--role", "inferencer",
                   "--keys-file", keys], shown=[cli, "keys", "create", "..."]).stdout.strip()
        hmac_key = os.path.join(tmp, "audit.hmac")
        signing = os.path.join(tmp, "audit.ed25519")
        run([cli, "audit", "keygen", "--hmac-key-file", hmac_key, "--signing-key", signing])
        audit_log = os.path.join(tmp, "audit.jsonl")
        secure_args = ["--model", model, "--tls-cert", os.path.join(tls, "server.pem"),
                       "--tls-key", os.path.join(tls, "server.key"), "--keys-file", keys,
                       "--audit-log", audit_log, "--audit-hmac-key-file", hmac_key,
                       "--audit-signing-key", signing]
        plain, plain_port = start_server(cli, ["--model", model], tmp, "plain", "http")
        secure, secure_port = start_server(cli, secure_args, tmp, "secure", "https",
                                           os.path.join(tls, "ca.pem"))
        name = args.model
        auth = {"Authorization": f"Bearer {key}"}
        post_plain = lua_script(os.path.join(tmp, "post_plain.lua"), "POST",
                                {"Content-Type": "image/jpeg"}, bus)
        post_secure = lua_script(os.path.join(tmp, "post_secure.lua"), "POST",
                                 {"Content-Type": "image/jpeg", **auth}, bus)
        get_plain = lua_script(os.path.join(tmp, "get_plain.lua"), "GET", {})
        get_secure = lua_script(os.path.join(tmp, "get_secure.lua"), "GET", auth)
        # Warm-up: the first request with a key runs argon2id once (then the key is cached),
        # which would otherwise show up in wrk's tail percentiles.
        def warm(port, scheme, headers):
            context = ssl.create_default_context(cafile=os.path.join(tls, "ca.pem"))
            req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/v2/models/{args.model}",
                                         headers=headers)
            with urllib.request.urlopen(req, timeout=60,
                                        context=context if scheme == "https" else None) as r:
                r.read()

        rows = {"plain": [], "secure": [], "plain_meta": [], "secure_meta": []}
        tls_args = ["--model", model, "--tls-cert", os.path.join(tls, "server.pem"),
                    "--tls-key", os.path.join(tls, "server.key")]
        ca = os.path.join(tls, "ca.pem")
        extra = []  # (name, proc, port, script)
        if args.breakdown:
            for label, more, script in (
                    ("tls_only", [], get_plain),
                    ("tls_key", ["--keys-file", keys], get_secure),
                    ("tls_key_audit_nosync", ["--keys-file", keys, "--audit-log",
                                              os.path.join(tmp, "audit_nosync.jsonl"),
                                              "--audit-hmac-key-file", hmac_key,
                                              "--audit-signing-key", signing,
                                              "--audit-sync", "none"], get_secure)):
                proc, port = start_server(cli, tls_args + more, tmp, label, "https", ca)
                extra.append((label, proc, port, script))
                rows[label + "_meta"] = []
        try:
            warm(plain_port, "http", {})
            warm(secure_port, "https", auth)
            for _, _, port, _ in extra:
                warm(port, "https", auth)
            for r in range(args.rounds):
                print(f"round {r + 1}/{args.rounds}", flush=True)
                rows["plain"].append(wrk(f"http://127.0.0.1:{plain_port}/v1/models/{name}/predict",
                                         post_plain, args.concurrency, args.duration))
                rows["secure"].append(wrk(
                    f"https://127.0.0.1:{secure_port}/v1/models/{name}/predict", post_secure,
                    args.concurrency, args.duration))
                rows["plain_meta"].append(wrk(f"http://127.0.0.1:{plain_port}/v2/models/{name}",
                                              get_plain, 1, max(2, args.duration // 4)))
                rows["secure_meta"].append(wrk(
                    f"https://127.0.0.1:{secure_port}/v2/models/{name}", get_secure, 1,
                    max(2, args.duration // 4)))
                for label, _, port, script in extra:
                    rows[label + "_meta"].append(wrk(
                        f"https://127.0.0.1:{port}/v2/models/{name}", script, 1,
                        max(2, args.duration // 4)))
        finally:
            stop(plain)
            stop(secure)
            for _, proc, _, _ in extra:
                stop(proc)
        verify = subprocess.run([cli, "audit", "verify", audit_log, "--hmac-key-file", hmac_key,
                                 "--public-key", signing + ".pub"], capture_output=True, text=True)
        print((verify.stdout + verify.stderr).strip())

        def med(key, field):
            values = [x[field] for x in rows[key] if x[field] is not None]
            return statistics.median(values) if values else None

        plain_rps, secure_rps = med("plain", "rps"), med("secure", "rps")
        ratio = secure_rps / plain_rps if plain_rps else 0
        report = {
            "machine": machine(), "model": args.model, "duration_s": args.duration,
            "rounds": args.rounds, "concurrency": args.concurrency, "runs": rows,
            "predict": {"plain_rps": plain_rps, "secure_rps": secure_rps,
                        "ratio": round(ratio, 3), "plain_p50_ms": med("plain", "p50_ms"),
                        "secure_p50_ms": med("secure", "p50_ms")},
            "metadata_c1": {"plain_p50_ms": med("plain_meta", "p50_ms"),
                            "secure_p50_ms": med("secure_meta", "p50_ms"),
                            "plain_rps": med("plain_meta", "rps"),
                            "secure_rps": med("secure_meta", "rps")},
        }
        p = report["predict"]
        m = report["metadata_c1"]
        md = [f"Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores. Model "
              f"{args.model}; medians of {args.rounds} interleaved rounds of {args.duration} s.",
              "",
              "| route | plain req/s | secure req/s | ratio | plain p50 ms | secure p50 ms |",
              "|---|---|---|---|---|---|",
              f"| predict, concurrency {args.concurrency} | {p['plain_rps']:.2f} | "
              f"{p['secure_rps']:.2f} | {ratio:.3f} | {p['plain_p50_ms']} | "
              f"{p['secure_p50_ms']} |",
              f"| model metadata, concurrency 1 | {m['plain_rps']:.0f} | {m['secure_rps']:.0f} | "
              f"{(m['secure_rps'] / m['plain_rps'] if m['plain_rps'] else 0):.3f} | "
              f"{m['plain_p50_ms']} | {m['secure_p50_ms']} |"]
        labels = {"plain_meta": "plain HTTP, no auth", "tls_only_meta": "TLS only",
                  "tls_key_meta": "TLS + API key",
                  "tls_key_audit_nosync_meta": "TLS + API key + audit (--audit-sync none)",
                  "secure_meta": "TLS + API key + audit (default --audit-sync batch)"}
        if args.breakdown:
            md += ["", "Model metadata at concurrency 1, one control added at a time:", "",
                   "| server | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
            for key in ("plain_meta", "tls_only_meta", "tls_key_meta",
                        "tls_key_audit_nosync_meta", "secure_meta"):
                md.append(f"| {labels[key]} | {med(key, 'rps'):.0f} | {med(key, 'p50_ms')} | "
                          f"{med(key, 'p99_ms')} |")
            report["breakdown"] = {k: {"rps": med(k, "rps"), "p50_ms": med(k, "p50_ms"),
                                       "p99_ms": med(k, "p99_ms")} for k in labels}
        print("\n".join(md))
        if args.out:
            benchlib.write_report(args.out, "security_bench", report, md)
        errors = sum(x["non2xx"] + x["socket_errors"] for v in rows.values() for x in v)
        checks.check("no errors", errors == 0, f"{errors} non-2xx answers or socket errors")
        checks.check("audit log verifies", verify.returncode == 0,
                     f"`cvdeploy audit verify` exit {verify.returncode}")
        if not args.smoke:
            checks.check("secure >= 95% of plain", ratio >= 0.95,
                         f"{secure_rps:.2f} / {plain_rps:.2f} req/s = {ratio:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
