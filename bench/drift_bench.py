#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Measures the cost of data-drift monitoring in `cvdeploy serve`: throughput with and without a
drift baseline, printing PASS/FAIL.

    bench/drift_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--model yolo11n-dq]
                         [--duration 10 | --requests N] [--rounds 4] [--concurrency 2] [--out DIR]

One server, one repository with the same model twice: `plain` (no baseline) and `drift`
(baseline.json beside the model, profiled by `cvdeploy profile-data` on 20 coco128 images).
wrk POSTs bus.jpg to each in turn, --rounds times (A B B A ...: interleaved so that a load
change on a shared machine hits both sides alike). Reported: the median requests/s of each
side and their ratio, and the server's CPU time per request on each side (user + system of all
its threads from /proc over each phase; only one side is loaded at a time, so the phase's CPU
is that side's work) with its ratio: the work drift monitoring adds, much less disturbed by
other load on the machine than req/s. With wrk the phase boundaries cut through requests in
flight (a few requests' worth of error per phase: use long phases); --requests N sends exactly
N requests per phase instead (serve_bench.counted_phase: nothing in flight at either end, so
the CPU attribution is exact; req/s from the phase's wall time). Target: drift >= 98% of plain
in throughput (the cost <= 2%, issue 19).
Exit status: 0 when the target passes, 1 otherwise.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import re

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import run  # noqa: E402
from serve_bench import LUA_POST, counted_phase, wrk  # noqa: E402


def start(cli, repo, tmp):
    err = os.path.join(tmp, "serve.err")
    proc = subprocess.Popen([cli, "serve", "--model-repository", repo, "--host", "127.0.0.1",
                             "--port", "0", "--access-log", ""],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    deadline = time.time() + 180
    port = None
    while time.time() < deadline:
        text = open(err).read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m:
            port = int(m.group(1))
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready",
                                            timeout=5) as r:
                    if r.status == 200:
                        return proc, port
            except Exception:
                pass
        if proc.poll() is not None:
            raise SystemExit("server exited: " + text)
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", default="yolo11n-dq")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--requests", type=int, default=0,
                    help="exactly N requests per phase instead of wrk for --duration")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    model = os.path.join(args.assets, "models", args.model + ".onnx")
    bus = os.path.join(args.assets, "images", "bus.jpg")
    tmp = tempfile.mkdtemp(prefix="cvdeploy-drift-bench-")
    try:
        images = os.path.join(tmp, "images")
        os.makedirs(images)
        coco = os.path.join(args.assets, "datasets", "coco128", "images")
        for name in sorted(os.listdir(coco))[:20]:
            shutil.copy(os.path.join(coco, name), images)
        repo = os.path.join(tmp, "repo")
        for name in ("plain", "drift"):
            os.makedirs(os.path.join(repo, name, "1"))
            os.symlink(model, os.path.join(repo, name, "1", "model.onnx"))
            with open(os.path.join(repo, name, "config.json"), "w") as f:
                f.write('{"instances": 1}')
        run([args.cvdeploy, "profile-data", "--model", model, "--images", images, "--out",
             os.path.join(repo, "drift", "1", "baseline.json")])
        script = os.path.join(tmp, "post.lua")
        with open(script, "w") as f:
            f.write(LUA_POST.replace("{image}", bus))
        proc, port = start(args.cvdeploy, repo, tmp)
        with open(bus, "rb") as f:
            body = f.read()
        rps = {"plain": [], "drift": []}
        cpu_ms = {"plain": [], "drift": []}  # server CPU milliseconds per request
        try:
            for r in range(args.rounds):
                order = ("plain", "drift") if r % 2 == 0 else ("drift", "plain")
                for name in order:
                    url = f"http://127.0.0.1:{port}/v1/models/{name}/predict"
                    if args.requests:
                        res = counted_phase(proc.pid, port, f"/v1/models/{name}/predict", body,
                                            args.requests, args.concurrency)
                    else:
                        cpu0 = benchlib.process_cpu_seconds(proc.pid)
                        res = wrk(url, script, args.concurrency, args.duration)
                        cpu = benchlib.process_cpu_seconds(proc.pid) - cpu0
                        res["cpu_ms"] = 1000 * cpu / max(1, res["requests"])
                    if res["non2xx"] or res["socket_errors"]:
                        raise SystemExit(f"{name}: failed requests: {res}")
                    rps[name].append(res["rps"])
                    cpu_ms[name].append(res["cpu_ms"])
                    print(f"round {r + 1} {name}: {res['rps']:.2f} req/s, server CPU "
                          f"{cpu_ms[name][-1]:.1f} ms/request", flush=True)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/drift/drift") as r:
                report = r.read().decode()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        plain, drift = statistics.median(rps["plain"]), statistics.median(rps["drift"])
        ratio = drift / plain if plain else 0
        print(f"median req/s: plain {plain:.2f}, drift {drift:.2f}, ratio {ratio:.4f}")
        cpu_plain, cpu_drift = statistics.median(cpu_ms["plain"]), statistics.median(cpu_ms["drift"])
        cpu_ratio = cpu_drift / cpu_plain if cpu_plain else 0
        print(f"median server CPU per request: plain {cpu_plain:.1f} ms, drift {cpu_drift:.1f} ms, "
              f"ratio {cpu_ratio:.4f} (drift monitoring costs {100 * (cpu_ratio - 1):+.1f}% CPU)")
        print("drift report after the run:", report[:300])
        ok = ratio >= 0.98
        print(("PASS" if ok else "FAIL") + f": throughput with a baseline {ratio * 100:.1f}% of "
              "without (target >= 98%)")
        if args.out:
            benchlib.write_report(args.out, "drift_bench",
                                  {"plain_rps": rps["plain"], "drift_rps": rps["drift"],
                                   "plain_median": plain, "drift_median": drift,
                                   "ratio": ratio, "cpu_ms_plain": cpu_ms["plain"],
                                   "cpu_ms_drift": cpu_ms["drift"], "cpu_ratio": cpu_ratio,
                                   "pass": ok},
                                  [f"| plain | {plain:.2f} |", f"| drift | {drift:.2f} |"])
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
