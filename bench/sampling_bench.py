#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Measures what sampled request logging costs the server: throughput with sampling off and at
--sample-rate 1.0 (every request stored), alternately in one run.

    bench/sampling_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--model yolov8n-dq]
                            [--duration 15 | --requests N] [--concurrency 4] [--rounds 2]
                            [--smoke]

Each round starts `cvdeploy serve` twice on 127.0.0.1 (off, then rate 1.0 with a fresh
--sample-dir) and POSTs bus.jpg with wrk for --duration seconds; the figures are the ratio of
the mean throughputs (on / off) within this run, the server's CPU time per request (user +
system of all its threads, the background writer included, from /proc: the work sampling adds,
much less disturbed by other load on the machine than req/s) and its ratio, plus the samples
written and dropped. --requests N sends exactly N requests per phase instead of wrk
(serve_bench.counted_phase, waiting for the writer before the last CPU reading: the CPU
attribution is exact; req/s from the phase's wall time). PASS when the throughput ratio is
>= 0.9 and every request succeeded (--smoke: when everything ran).
"""
import os
import re
import shutil
import tempfile
import time
import urllib.request

import benchlib
import serve_bench


def samples_metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for result in ("written", "dropped", "failed"):
        m = re.search(rf'cvdeploy_samples_total\{{result="{result}"\}} ([\d.e+]+)', text)
        out[result] = float(m.group(1)) if m else 0.0
    return out


def wait_written(port, requests, timeout_s=30):
    """Waits until the writer has handled (written, dropped or failed) `requests` samples."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if sum(samples_metrics(port).values()) >= requests:
            return
        time.sleep(0.1)


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", default="yolov8n-dq")
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--requests", type=int, default=0,
                    help="exactly N requests per phase instead of wrk for --duration")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.duration, args.rounds = 2, 1
    model = os.path.join(args.assets, "models", args.model + ".onnx")
    bus = os.path.join(args.assets, "images", "bus.jpg")
    tmp = tempfile.mkdtemp(prefix="sampling-bench-")
    script = os.path.join(tmp, "post.lua")
    with open(script, "w") as f:
        f.write(serve_bench.LUA_POST.format(image=bus))
    with open(bus, "rb") as f:
        body = f.read()
    rps = {"off": [], "on": []}
    cpu_ms = {"off": [], "on": []}  # server CPU milliseconds per request
    ok = True
    stored = {}
    try:
        for r in range(args.rounds):
            for mode in ("off", "on"):
                store = os.path.join(tmp, f"store-{r}")
                extra = ["--sample-rate", "1.0", "--sample-dir", store] if mode == "on" else []
                proc, port = serve_bench.start_server(args.cvdeploy, model, tmp, extra)
                try:
                    url = f"http://127.0.0.1:{port}/v1/models/{args.model}/predict"
                    if args.requests:
                        settle = (lambda: wait_written(port, args.requests)) if mode == "on" else None
                        w = serve_bench.counted_phase(
                            proc.pid, port, f"/v1/models/{args.model}/predict", body, args.requests,
                            args.concurrency, settle)
                        w["p50_ms"] = "-"
                    else:
                        cpu0 = benchlib.process_cpu_seconds(proc.pid)
                        w = serve_bench.wrk(url, script, args.concurrency, args.duration)
                        if mode == "on":  # the writer finishes the queued samples
                            wait_written(port, w["requests"])
                        cpu = benchlib.process_cpu_seconds(proc.pid) - cpu0
                        w["cpu_ms"] = 1000 * cpu / max(1, w["requests"])
                    if w["requests"] > 0:
                        cpu_ms[mode].append(w["cpu_ms"])
                    print(f"round {r + 1} sampling {mode}: {w['rps']:.2f} req/s, p50 "
                          f"{w['p50_ms']} ms, server CPU {w['cpu_ms']:.1f} "
                          f"ms/request, non-2xx {w['non2xx']}, socket errors "
                          f"{w['socket_errors']}", flush=True)
                    ok = ok and w["non2xx"] == 0 and w["socket_errors"] == 0 and w["requests"] > 0
                    rps[mode].append(w["rps"])
                    if mode == "on":
                        stored = samples_metrics(port)
                        print(f"  samples: {stored}", flush=True)
                finally:
                    proc.terminate()
                    proc.wait(timeout=60)
        off = sum(rps["off"]) / len(rps["off"])
        on = sum(rps["on"]) / len(rps["on"])
        ratio = on / off if off > 0 else 0.0
        print(f"throughput with sampling at 1.0 / off: {ratio:.3f} ({on:.2f} vs {off:.2f} req/s, "
              f"concurrency {args.concurrency}, {args.rounds} round(s) of "
              f"{f'{args.requests} requests' if args.requests else f'{args.duration} s'})")
        if cpu_ms["off"] and cpu_ms["on"]:
            c_off = sum(cpu_ms["off"]) / len(cpu_ms["off"])
            c_on = sum(cpu_ms["on"]) / len(cpu_ms["on"])
            print(f"server CPU per request with sampling at 1.0 / off: {c_on / c_off:.3f} "
                  f"({c_on:.1f} vs {c_off:.1f} ms; rounds: on {[round(x, 1) for x in cpu_ms['on']]}, "
                  f"off {[round(x, 1) for x in cpu_ms['off']]})")
        passed = ok if args.smoke else ok and ratio >= 0.9
        print("PASS" if passed else "FAIL")
        return 0 if passed else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
