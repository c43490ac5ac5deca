#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A/B of two cvdeploy builds in one run, on one machine: the figures a refactoring must hold.

    bench/ab_bench.py --a OLD/cvdeploy --b NEW/cvdeploy [--label-a before] [--label-b after]
                      [--model yolov8n-dq] [--rounds 4] [--iters 60] [--duration 15]
                      [--kserve-requests 60] [--out DIR] [--bench-only] [--smoke]

Per round, A then B on even rounds and B then A on odd ones (so neither always runs on a
warmer or cooler machine):
 1. `cvdeploy bench` on bus.jpg: p50 of the bare engine, of pre+infer+post and end to end,
    and the ratios (pre+infer+post)/bare and e2e/bare;
 2. `cvdeploy serve` on 127.0.0.1; wrk POSTs bus.jpg to /v1/models/{model}/predict with 4
    connections for --duration seconds (throughput, p50);
 3. on the same server, --kserve-requests sequential KServe v2 infer requests with a
    640x640 FP32 input as binary data (binary output too): client-side latency p50.
Reports the median over rounds of every figure per build and the B/A ratio, as JSON and
Markdown, with the machine. No target is checked here: the script measures; the reader
judges "within noise" from the spread between rounds (min..max is printed).
--smoke: one short round, so CI keeps the script working; its numbers mean nothing.
"""
import http.client
import json
import os
import platform
import re
import statistics
import struct
import sys
import tempfile
import time

import benchlib
from benchlib import run
from serve_bench import LUA_POST, start_server, wrk


def bench_figures(cli, model, bus, tmp, iters):
    out = os.path.join(tmp, "bench.json")
    run([cli, "bench", "--model", model, "--source", bus, "--iters", str(iters), "--warmup", "5",
         "--json", out])
    record = benchlib.load_json(out)
    result = record["results"][0]
    return {
        "bare_p50_ms": result["bare_engine_ms"]["p50"],
        "pre_infer_post_p50_ms": result["no_decode_ms"]["p50"],
        "e2e_p50_ms": result["stages_ms"]["end_to_end"]["p50"],
        "pre_infer_post_over_bare": result["ratio_no_decode_to_bare"],
        "e2e_over_bare": result["ratio_e2e_to_bare"],
    }, record.get("machine")


def kserve_binary_body(size):
    values = size * size * 3
    header = json.dumps({
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3, size, size],
                    "parameters": {"binary_data_size": values * 4}}],
        "parameters": {"binary_data_output": True},
    }).encode()
    data = struct.pack(f"<{values}f", *([0.5] * values))
    return header, header + data


def kserve_latency(port, model, size, count):
    header, body = kserve_binary_body(size)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for i in range(count + 3):
        t0 = time.perf_counter()
        conn.request("POST", f"/v2/models/{model}/infer", body,
                     {"Content-Type": "application/octet-stream",
                      "Inference-Header-Content-Length": str(len(header))})
        resp = conn.getresponse()
        payload = resp.read()
        elapsed = (time.perf_counter() - t0) * 1e3
        if resp.status != 200:
            raise SystemExit(f"KServe infer answered {resp.status}: {payload[:200]!r}")
        if i >= 3:  # the first requests warm the engine up
            times.append(elapsed)
    conn.close()
    return statistics.median(times)


def server_figures(cli, model_path, model, bus, tmp, duration, kserve_requests):
    proc, port = start_server(cli, model_path, tmp)
    try:
        script = os.path.join(tmp, "post.lua")
        with open(script, "w") as f:
            f.write(LUA_POST.format(image=bus))
        w = wrk(f"http://127.0.0.1:{port}/v1/models/{model}/predict", script, 4, duration)
        if w["non2xx"] or w["socket_errors"]:
            raise SystemExit(f"{cli}: {w['non2xx']} non-2xx answers, "
                             f"{w['socket_errors']} socket errors under load")
        return {"serve_c4_rps": w["rps"], "serve_c4_p50_ms": w["p50_ms"],
                "kserve_fp32_640_binary_p50_ms": kserve_latency(port, model, 640,
                                                                kserve_requests)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--a", required=True, help="cvdeploy binary of build A")
    ap.add_argument("--b", required=True, help="cvdeploy binary of build B")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--model", default="yolov8n-dq")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--kserve-requests", type=int, default=60)
    ap.add_argument("--out", default=None, help="write ab_bench.json and ab_bench.md here")
    ap.add_argument("--bench-only", action="store_true",
                    help="only step 1 (cvdeploy bench), for more rounds in the same time")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.iters, args.duration, args.kserve_requests = 1, 5, 2, 3
    model_path = os.path.join(args.assets, "models", args.model + ".onnx")
    bus = os.path.join(args.assets, "images", "bus.jpg")
    builds = {args.label_a: os.path.abspath(args.a), args.label_b: os.path.abspath(args.b)}
    samples = {label: {} for label in builds}
    machine = None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(builds) if r % 2 == 0 else list(reversed(list(builds)))
            for label in order:
                cli = builds[label]
                figures, machine = bench_figures(cli, model_path, bus, tmp, args.iters)
                if not args.bench_only:
                    figures.update(server_figures(cli, model_path, args.model, bus, tmp,
                                                  args.duration, args.kserve_requests))
                for key, value in figures.items():
                    samples[label].setdefault(key, []).append(value)
                print(f"round {r + 1} {label}: " +
                      ", ".join(f"{k} {v:.3f}" for k, v in figures.items()), flush=True)
    a, b = args.label_a, args.label_b
    rows = []
    for key in samples[a]:
        ma, mb = statistics.median(samples[a][key]), statistics.median(samples[b][key])
        rows.append({"figure": key, a: ma, b: mb, "b_over_a": mb / ma if ma else None,
                     a + "_range": [min(samples[a][key]), max(samples[a][key])],
                     b + "_range": [min(samples[b][key]), max(samples[b][key])]})
    report = {"machine": machine, "host": platform.node(), "model": args.model,
              "rounds": args.rounds, "builds": builds, "figures": rows}
    lines = [f"| figure (median of {args.rounds} rounds) | {a} | {b} | {b}/{a} |",
             "|---|---|---|---|"]
    for row in rows:
        ra, rb = row[a + "_range"], row[b + "_range"]
        lines.append(f"| {row['figure']} | {row[a]:.3f} ({ra[0]:.3f}..{ra[1]:.3f}) | "
                     f"{row[b]:.3f} ({rb[0]:.3f}..{rb[1]:.3f}) | {row['b_over_a']:.3f} |")
    markdown = "\n".join(lines)
    print(markdown)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "ab_bench.json"), "w") as f:
            json.dump(report, f, indent=2)
        with open(os.path.join(args.out, "ab_bench.md"), "w") as f:
            f.write(markdown + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
