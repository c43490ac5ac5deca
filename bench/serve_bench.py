#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Load-tests `cvdeploy serve` with wrk and checks the server targets, printing PASS/FAIL.

    bench/serve_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--model yolov8n-dq]
                         [--duration 20] [--concurrency 1,4,16] [--memory-requests 10000]
                         [--out DIR] [--smoke]

In one run, on one machine:
 1. the best offline throughput `cvdeploy bench` reaches for the model: the single-image
    loop on bus.jpg and the pipelined directory path (copies of bus.jpg), whichever is higher;
 2. `cvdeploy serve` on 127.0.0.1 with the same model; wrk POSTs bus.jpg to
    /v1/models/{model}/predict at each concurrency for --duration seconds;
 3. resident memory after warm-up, then after --memory-requests more requests.
Targets: server throughput at the best concurrency >= 90% of the best offline throughput;
no non-2xx answer or socket error; RSS growth <= 20 MB. --smoke runs a few seconds of
everything so CI keeps the script working; its timings mean nothing and targets are not
checked (only that every request succeeded).
Exit status: 0 when every target passes (with --smoke: when everything ran), 1 otherwise.
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import benchlib
from benchlib import run

LUA_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/jpeg"
local f = assert(io.open("{image}", "rb"))
wrk.body = f:read("*a")
f:close()
"""



def offline(cli, model, bus, tmp, smoke):
    iters = "5" if smoke else "60"
    single = os.path.join(tmp, "single.json")
    run([cli, "bench", "--model", model, "--source", bus, "--iters", iters, "--warmup", "3",
         "--json", single])
    images = os.path.join(tmp, "images")
    os.makedirs(images, exist_ok=True)
    for i in range(8 if smoke else 48):
        dst = os.path.join(images, f"bus{i:03d}.jpg")
        if not os.path.exists(dst):
            shutil.copyfile(bus, dst)
    pipe = os.path.join(tmp, "pipeline.json")
    run([cli, "bench", "--model", model, "--source", images, "--iters", "8" if smoke else "96",
         "--warmup", "2", "--json", pipe])
    with open(single) as f:
        s = json.load(f)["results"][0]["throughput_ips"]
    with open(pipe) as f:
        p = json.load(f)["results"][0]["throughput_ips"]
    return s, p


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def start_server(cli, model, tmp, extra=()):
    log = open(os.path.join(tmp, "serve.err"), "w")
    proc = subprocess.Popen([cli, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
                             "--access-log", os.path.join(tmp, "access.log"), *extra],
                            stdout=subprocess.DEVNULL, stderr=log)
    port = None
    deadline = time.time() + 120
    while time.time() < deadline:
        text = open(os.path.join(tmp, "serve.err")).read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m and port is None:
            port = int(m.group(1))
        if port is not None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5) as r:
                    if r.status == 200:
                        return proc, port
            except Exception:
                pass
        if proc.poll() is not None:
            raise SystemExit("server exited: " + text)
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not become ready")


def parse_wrk(text):
    out = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "non2xx": 0, "socket_errors": 0,
           "requests": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["socket_errors"] = sum(int(g) for g in m.groups())

    def ms(value, unit):
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        if m:
            out[key] = round(ms(m.group(1), m.group(2)), 1)
    return out


def wrk(url, script, connections, duration):
    threads = str(min(2, connections))
    proc = run(["wrk", "-t", threads, "-c", str(connections), "-d", f"{duration}s", "--timeout",
                "30s", "--latency", "-s", script, url])
    return parse_wrk(proc.stdout)


def counted_phase(pid, port, path, body, total, connections, settle=None):
    """Exactly `total` POSTs (send_requests), timed, with the server's CPU time over them
    (benchlib.process_cpu_seconds of `pid`). Nothing is in flight before or after, so the CPU
    time is these requests' work and nothing else's; `settle` (optional) is called before the
    final reading, e.g. to wait for background work the requests queued. Returns
    send_requests' counts plus "rps" and "cpu_ms" (server CPU milliseconds per request)."""
    cpu0 = benchlib.process_cpu_seconds(pid)
    t0 = time.monotonic()
    state = send_requests(port, path, body, total, connections)
    wall = time.monotonic() - t0
    if settle:
        settle()
    cpu = benchlib.process_cpu_seconds(pid) - cpu0
    state["rps"] = state["requests"] / wall if wall > 0 else 0.0
    state["cpu_ms"] = 1000 * cpu / max(1, state["requests"])
    return state


def send_requests(port, path, body, total, connections):
    """Exactly `total` POSTs over `connections` keep-alive connections (wrk runs for a
    duration, not a count). Returns {"requests", "non2xx", "socket_errors"}."""
    lock = threading.Lock()
    state = {"left": total, "requests": 0, "non2xx": 0, "socket_errors": 0}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if state["left"] == 0:
                    break
                state["left"] -= 1
            try:
                conn.request("POST", path, body, {"Content-Type": "image/jpeg"})
                resp = conn.getresponse()
                resp.read()
                ok = 200 <= resp.status < 300
                with lock:
                    state["requests"] += 1
                    state["non2xx"] += 0 if ok else 1
            except (OSError, http.client.HTTPException):
                with lock:
                    state["socket_errors"] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return state


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", default="yolov8n-dq")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--memory-requests", type=int, default=10000)
    ap.add_argument("--out", default=None, help="write serve_bench.json and .md here")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (scripts/setup-deps.sh installs it)")
    if args.smoke:
        args.duration, args.concurrency, args.memory_requests = 2, "1,4", 40
    model = os.path.join(args.assets, "models", args.model + ".onnx")
    bus = os.path.join(args.assets, "images", "bus.jpg")
    concurrency = [int(c) for c in args.concurrency.split(",")]

    tmp = tempfile.mkdtemp(prefix="cvdeploy-serve-bench-")
    try:
        single_ips, pipeline_ips = offline(args.cvdeploy, model, bus, tmp, args.smoke)
        best_offline = max(single_ips, pipeline_ips)
        proc, port = start_server(args.cvdeploy, model, tmp)
        try:
            url = f"http://127.0.0.1:{port}/v1/models/{args.model}/predict"
            post = os.path.join(tmp, "post.lua")
            with open(post, "w") as f:
                f.write(LUA_POST.replace("{image}", bus))
            rss_warm = rss_mb(proc.pid)
            rows = []
            for c in concurrency:
                r = wrk(url, post, c, args.duration)
                r["concurrency"] = c
                rows.append(r)
                print(f"  concurrency {c}: {r['rps']:.2f} req/s, p50 {r['p50_ms']} ms, "
                      f"p99 {r['p99_ms']} ms, non-2xx {r['non2xx']}, socket errors "
                      f"{r['socket_errors']}", flush=True)
            # Memory: RSS after warm-up against RSS after --memory-requests more requests.
            rss_before = rss_mb(proc.pid)
            with open(bus, "rb") as f:
                body = f.read()
            print(f"$ {args.memory_requests} requests over 4 connections (memory phase)", flush=True)
            mem = send_requests(port, f"/v1/models/{args.model}/predict", body,
                                args.memory_requests, 4)
            rss_after = rss_mb(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        best = max(rows, key=lambda r: r["rps"])
        errors = sum(r["non2xx"] + r["socket_errors"] for r in rows) + mem["non2xx"] + mem["socket_errors"]
        report = {
            "model": args.model, "duration_s": args.duration,
            "offline": {"single_image_ips": single_ips, "pipeline_ips": pipeline_ips,
                        "best_ips": best_offline},
            "server": rows,
            "best_concurrency": best["concurrency"],
            "server_to_offline": round(best["rps"] / best_offline, 3) if best_offline else 0,
            "memory": {"rss_after_warmup_mb": round(rss_warm, 1),
                       "rss_before_mb": round(rss_before, 1),
                       "requests": mem["requests"], "rss_after_mb": round(rss_after, 1),
                       "growth_mb": round(rss_after - rss_warm, 1)},
            "errors": errors,
        }
        md = [f"| concurrency | req/s | p50 ms | p99 ms | non-2xx |", "|---|---|---|---|---|"]
        for r in rows:
            md.append(f"| {r['concurrency']} | {r['rps']:.2f} | {r['p50_ms']} | {r['p99_ms']} | "
                      f"{r['non2xx'] + r['socket_errors']} |")
        md.append("")
        md.append(f"Offline `cvdeploy bench`: single image {single_ips:.2f} img/s, pipeline "
                  f"{pipeline_ips:.2f} img/s. Server best {best['rps']:.2f} req/s at concurrency "
                  f"{best['concurrency']} = {report['server_to_offline']:.3f} x offline.")
        md.append(f"RSS after warm-up {rss_warm:.1f} MB; after {mem['requests']} more requests "
                  f"{rss_after:.1f} MB (growth {rss_after - rss_warm:+.1f} MB).")
        print("\n".join(md))
        if args.out:
            benchlib.write_report(args.out, "serve_bench", report, md)
        failed = 0

        def check(name, ok, detail):
            nonlocal failed
            print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
            failed += 0 if ok else 1

        check("no errors", errors == 0, f"{errors} non-2xx answers or socket errors")
        if not args.smoke:
            check("server >= 90% of offline", report["server_to_offline"] >= 0.9,
                  f"{best['rps']:.2f} req/s vs {best_offline:.2f} img/s = "
                  f"{report['server_to_offline']:.3f}")
            check("RSS growth <= 20 MB", rss_after - rss_warm <= 20,
                  f"{rss_after - rss_warm:+.1f} MB after {mem['requests']} requests")
            check("memory phase size", mem["requests"] >= args.memory_requests,
                  f"{mem['requests']} requests (wanted {args.memory_requests})")
        return 1 if failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
