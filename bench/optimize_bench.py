#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Produces the float / int8 / fp16 / pruned table of docs/optimization.md and checks the
targets of the optimization tools, printing PASS/FAIL per target.

    bench/optimize_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--out DIR] [--smoke]

For each detection model it runs `cvdeploy quantize` (calibration on the coco128 images),
`cvdeploy fp16` and `cvdeploy prune --ratio 0.3`, then measures every variant in this one
run: file size, parameters and GFLOPs (`cvdeploy info --json`), mAP50-95 on coco128
(`cvdeploy validate`) and end-to-end latency/throughput on bus.jpg (`cvdeploy bench`).
Speed is measured in rounds that cycle through the variants (float, int8, fp16, pruned,
float, ...), and each variant's figure is its median over the rounds, so that a machine
whose speed drifts affects every variant alike; ratios are taken against the float model
of the same run. Calibration and validation both use coco128: they overlap, which flatters
the quantized accuracy somewhat; the docs say so.
--smoke runs each tool on a few images with a few iterations so CI keeps the script and the
tools working; its figures mean nothing, so it checks that every step succeeds, not targets.
Exit status: 0 when every target passes (or, with --smoke, every step works), 1 otherwise.
"""
import json
import os
import shutil
import sys
import tempfile

import benchlib
from benchlib import Checks, load_json, run

MODELS = ["yolov8n-dq", "yolo11n-dq"]


def small_dataset(coco, out, n):
    """A YOLO dataset directory with the first n images of coco128 (symlinks)."""
    root = os.path.join(out, f"coco128_first{n}")
    if os.path.isdir(root):
        shutil.rmtree(root)
    for sub in ("images", "labels"):
        os.makedirs(os.path.join(root, sub))
    images = sorted(os.listdir(os.path.join(coco, "images")))[:n]
    for name in images:
        os.symlink(os.path.join(coco, "images", name), os.path.join(root, "images", name))
        label = os.path.splitext(name)[0] + ".txt"
        src = os.path.join(coco, "labels", label)
        if os.path.exists(src):
            os.symlink(src, os.path.join(root, "labels", label))
    return root


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--out", default=None, help="keep the models, JSON and Markdown here")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--method", default="percentile", help="quantize --method")
    ap.add_argument("--rounds", type=int, default=3, help="speed rounds over all variants")
    ap.add_argument("--iters", type=int, default=30, help="bench iterations per round")
    ap.add_argument("--smoke", action="store_true", help="few images and iterations")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="cvdeploy_optimize_")
    os.makedirs(out, exist_ok=True)
    cli = args.cvdeploy
    bus = os.path.join(args.assets, "images", "bus.jpg")
    coco = os.path.join(args.assets, "datasets", "coco128")
    data = small_dataset(coco, out, 4) if args.smoke else coco
    calib_size = "4" if args.smoke else "100"
    rounds = 1 if args.smoke else args.rounds
    bench_iters = ["--warmup", "1", "--iters", "2"] if args.smoke else \
        ["--warmup", "5", "--iters", str(args.iters)]
    c = Checks()
    commit = benchlib.git_commit()
    header = (f"commit `{commit}`, {benchlib.cpu_model()}, {os.cpu_count()} logical cores, "
              f"`cvdeploy bench` on bus.jpg ({bench_iters[-1]} iterations x {rounds} rounds, median), "
              f"`cvdeploy validate` on coco128 ({'4 images (smoke)' if args.smoke else '86 images'})")
    table = ["| model | variant | size (MB) | params (M) | GFLOPs | mAP50-95 | e2e p50 (ms) "
             "| images/s | speed vs float |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in args.models.split(","):
        model = os.path.join(args.assets, "models", name + ".onnx")
        variants = {"float": model}
        int8 = os.path.join(out, f"{name}_int8.onnx")
        run([cli, "quantize", "--model", model, "--calib", os.path.join(data, "images"),
             "--calib-size", calib_size, "--method", args.method, "--out", int8,
             "--save-calibration", os.path.join(out, f"{name}_calibration.json")])
        variants["int8"] = int8
        fp16 = os.path.join(out, f"{name}_fp16.onnx")
        run([cli, "fp16", "--model", model, "--out", fp16])
        variants["fp16"] = fp16
        pruned = os.path.join(out, f"{name}_pruned.onnx")
        run([cli, "prune", "--model", model, "--ratio", "0.3", "--out", pruned])
        variants["pruned"] = pruned

        info, accuracy = {}, {}
        for v, path in variants.items():
            info[v] = json.loads(run([cli, "info", path, "--json"]).stdout)
            vjson = os.path.join(out, f"{name}_{v}_val.json")
            run([cli, "validate", "--model", path, "--data", data, "--json", vjson])
            accuracy[v] = load_json(vjson)["map50_95"]
        med = benchlib.interleaved_speeds(cli, variants, bus, out, rounds, bench_iters,
                                          prefix=f"{name}_")
        base_ips = med["float"][1]
        for v, path in variants.items():
            cost = info[v].get("cost", {})
            table.append(
                f"| {name} | {v} | {os.path.getsize(path) / 1e6:.2f} "
                f"| {cost.get('params', 0) / 1e6:.2f} | {cost.get('flops', 0) / 1e9:.2f} "
                f"| {accuracy[v]:.4f} | {med[v][0]:.1f} | {med[v][1]:.2f} "
                f"| {med[v][1] / base_ips:.2f}x |")
        drop8 = accuracy["float"] - accuracy["int8"]
        drop16 = abs(accuracy["float"] - accuracy["fp16"])
        flops_cut = 1 - info["pruned"]["cost"]["flops"] / info["float"]["cost"]["flops"]
        if args.smoke:
            c.check(f"{name} every variant runs and validates",
                    all(med[v][1] > 0 for v in variants), "ok")
            continue
        c.check(f"{name} int8 end-to-end throughput >= 1.5 x float", med["int8"][1] >= 1.5 * base_ips,
                f"{med['int8'][1]:.2f} vs {base_ips:.2f} img/s = {med['int8'][1] / base_ips:.2f}x")
        c.check(f"{name} int8 mAP50-95 drop <= 0.010", drop8 <= 0.010,
                f"{accuracy['float']:.4f} -> {accuracy['int8']:.4f} (drop {drop8:+.4f})")
        c.check(f"{name} fp16 mAP50-95 within 0.003", drop16 <= 0.003,
                f"{accuracy['float']:.4f} -> {accuracy['fp16']:.4f}")
        if name == "yolov8n-dq":
            c.check(f"{name} prune 0.3: >= 25% fewer FLOPs", flops_cut >= 0.25,
                    f"{flops_cut * 100:.1f}% fewer")
            c.check(f"{name} prune 0.3: >= 1.2 x faster", med["pruned"][1] >= 1.2 * base_ips,
                    f"{med['pruned'][1] / base_ips:.2f}x")
    md = header + "\n\n" + "\n".join(table) + "\n\n" + "\n".join(c.lines) + "\n"
    return c.finish(out, "optimization.md", md)


if __name__ == "__main__":
    sys.exit(main())
