#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""cvdeploy against a plain ONNX Runtime + OpenCV program, side by side in one run (issue 16).

    bench/side_by_side.py [--models yolov8n-dq,yolo11n-dq] [--rounds 4] [--iters 40]
                          [--warmup 5] [--images 0] [--threads N] [--require-ratio X]
                          [--out DIR] [--plain PATH] [--build-dir build] [--smoke]
    bench/side_by_side.py --rejudge RECORD.json [--require-ratio X]

The baseline is bench/baseline/plain_ort.cpp (target cvdeploy_plain_ort): cv::imread, a fixed
letterbox, Ort::Session::Run with ONNX Runtime's default session options and the same intra-op
thread budget, decode + NMS, one image after the other. Both programs are built first (unless
--plain is given). Per model and round, in alternating order (A B, then B A):
 1. bus.jpg end to end (read + decode + letterbox + run + decode + NMS) over --iters
    iterations after --warmup: p50 of each side (cvdeploy: `cvdeploy bench --source bus.jpg`,
    its end_to_end stage, with --threads N);
 2. the coco128 images (--images N: the first N, sorted; 0: all 86) as a directory:
    throughput, model load excluded (cvdeploy: `cvdeploy bench --source DIR`, its pipeline
    with the same total thread budget: workers x engine threads = N).
Ratios: median over rounds of the baseline's p50 over cvdeploy's p50, and of cvdeploy's
throughput over the baseline's. Agreement: the detections of `cvdeploy predict` and of the
baseline on the same images at conf 0.25, IoU 0.7, matched per image by class and IoU >= 0.9.
Targets (PASS/FAIL, exit status 1 on any FAIL): single-image p50 >= 1.30x, throughput
>= 1.50x (--require-ratio X sets both to X), agreement >= 97% of detections.
--smoke: one round, 3 iterations, 2 images, yolov8n-dq only, so CI keeps the script working;
its speed targets are printed but not enforced unless --require-ratio is given.
--rejudge: re-applies the targets to a record written by --out, without running anything.
The record (side_by_side.json/.md in --out) holds the machine, its int8 ISA, the commit, the
ONNX Runtime version and every round's figures.
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

import benchlib
from benchlib import run

SINGLE_TARGET = 1.30
THROUGHPUT_TARGET = 1.50
AGREEMENT_TARGET = 0.97
AGREEMENT_IOU = 0.9


def physical_cores():
    """Distinct (physical id, core id) pairs of /proc/cpuinfo, as cvdeploy counts its cores."""
    cores, physical = set(), "0"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    cores.add((physical, value.strip()))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


def iou(a, b):
    ix = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    iy = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    area = lambda d: (d["x2"] - d["x1"]) * (d["y2"] - d["y1"])  # noqa: E731
    union = area(a) + area(b) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def agreement(plain_images, cvdeploy_images):
    """(matched, total): greedy one-to-one matching per image, same class and IoU >= 0.9;
    total counts the detections of the side with more of them, image by image."""
    ours = {os.path.basename(r["source"]): r["detections"] for r in cvdeploy_images}
    matched = total = 0
    for image in plain_images:
        theirs = image["detections"]
        mine = list(ours.get(os.path.basename(image["source"]), []))
        total += max(len(theirs), len(mine))
        for d in sorted(theirs, key=lambda d: -d["confidence"]):
            best, best_iou = None, AGREEMENT_IOU
            for i, e in enumerate(mine):
                if e["class_id"] == d["class_id"] and iou(d["box"], e["box"]) >= best_iou:
                    best, best_iou = i, iou(d["box"], e["box"])
            if best is not None:
                matched += 1
                mine.pop(best)
    return matched, total


def plain_run(args, model, source, threads, iters):
    cmd = [args.plain, "--model", model, "--source", source, "--threads", str(threads),
           "--warmup", str(args.warmup), "--iters", str(iters)]
    return json.loads(run(cmd).stdout)


def cvdeploy_bench(args, model, source, threads, directory, tmp, images=0):
    out = os.path.join(tmp, "bench.json")
    cmd = [args.cvdeploy, "bench", "--model", model, "--source", source,
           "--warmup", str(args.warmup), "--json", out]
    if directory:
        # The same total budget, split as cvdeploy splits it by default (PlanThreads).
        workers = min(threads, 4)
        cmd += ["--iters", str(images), "--workers", str(workers),
                "--threads", str(max(1, threads // workers))]
    else:
        cmd += ["--iters", str(args.iters), "--threads", str(threads)]
    run(cmd)
    return benchlib.load_json(out)


def cvdeploy_predict(args, model, sources, threads):
    proc = run([args.cvdeploy, "predict", "--model", model, "--source", *sources, "--threads",
                str(threads), "--conf", "0.25", "--iou", "0.7", "--quiet", "--json", "-"])
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def image_dir(args, tmp):
    """The coco128 images (the first --images of them), as a directory of links."""
    src = os.path.join(args.assets, "datasets", "coco128", "images")
    names = sorted(n for n in os.listdir(src) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    if args.images > 0:
        names = names[:args.images]
    if len(names) == len(os.listdir(src)):
        return src, len(names)
    d = os.path.join(tmp, "images")
    os.makedirs(d, exist_ok=True)
    for n in names:
        os.symlink(os.path.join(src, n), os.path.join(d, n))
    return d, len(names)


def measure_model(args, name, bus, images_dir, count, tmp):
    model = name if os.path.exists(name) else os.path.join(args.assets, "models", name + ".onnx")
    rec = {"model": name, "single": {"plain_p50_ms": [], "cvdeploy_p50_ms": []},
           "directory": {"images": count, "plain_ips": [], "cvdeploy_ips": []}}
    machine = None
    plain_single = plain_dir = None
    for r in range(args.rounds):
        order = ("plain", "cvdeploy") if r % 2 == 0 else ("cvdeploy", "plain")
        for side in order:
            if side == "plain":
                plain_single = plain_run(args, model, bus, args.threads, args.iters)
                rec["single"]["plain_p50_ms"].append(plain_single["p50_ms"])
            else:
                b = cvdeploy_bench(args, model, bus, args.threads, False, tmp)
                rec["single"]["cvdeploy_p50_ms"].append(
                    b["results"][0]["stages_ms"]["end_to_end"]["p50"])
                machine = b
        for side in order:
            if side == "plain":
                plain_dir = plain_run(args, model, images_dir, args.threads, 1)
                rec["directory"]["plain_ips"].append(plain_dir["throughput_ips"])
            else:
                b = cvdeploy_bench(args, model, images_dir, args.threads, True, tmp, count)
                rec["directory"]["cvdeploy_ips"].append(b["results"][0]["throughput_ips"])
    s, d = rec["single"], rec["directory"]
    s["ratio"] = statistics.median(s["plain_p50_ms"]) / statistics.median(s["cvdeploy_p50_ms"])
    d["ratio"] = statistics.median(d["cvdeploy_ips"]) / statistics.median(d["plain_ips"])
    # Agreement on every image measured, from one untimed cvdeploy predict.
    plain_images = plain_single["images"] + plain_dir["images"]
    ours = cvdeploy_predict(args, model, [bus, images_dir], args.threads)
    matched, total = agreement(plain_images, ours)
    rec["agreement"] = {"matched": matched, "detections": total,
                        "fraction": matched / total if total else 1.0}
    return rec, machine


def judge(record, require_ratio, enforce_speed):
    """Prints the PASS/FAIL lines; returns the number of failures that count."""
    single_target = require_ratio or record["targets"]["single_p50"]
    throughput_target = require_ratio or record["targets"]["throughput"]
    checks = benchlib.Checks()
    speed_failures = 0
    for m in record["models"]:
        s, d, a = m["single"], m["directory"], m["agreement"]
        before = checks.failed
        checks.check(f"{m['model']} bus.jpg end-to-end p50 >= {single_target:.2f}x the baseline",
                     s["ratio"] >= single_target,
                     f"{s['ratio']:.2f}x (baseline {statistics.median(s['plain_p50_ms']):.1f} "
                     f"ms, cvdeploy {statistics.median(s['cvdeploy_p50_ms']):.1f} ms)")
        checks.check(f"{m['model']} {d['images']} images throughput >= {throughput_target:.2f}x",
                     d["ratio"] >= throughput_target,
                     f"{d['ratio']:.2f}x (baseline {statistics.median(d['plain_ips']):.2f} img/s, "
                     f"cvdeploy {statistics.median(d['cvdeploy_ips']):.2f} img/s)")
        speed_failures += checks.failed - before
        checks.check(f"{m['model']} detections agree (same class, IoU >= {AGREEMENT_IOU})",
                     a["fraction"] >= AGREEMENT_TARGET,
                     f"{a['matched']}/{a['detections']} = {100 * a['fraction']:.1f}% "
                     f"(target {100 * AGREEMENT_TARGET:.0f}%)")
    if not enforce_speed and speed_failures:
        print(f"(smoke run: {speed_failures} speed FAIL line(s) not enforced; the timings of a "
              "one-round smoke run mean nothing)")
        return checks.failed - speed_failures
    return checks.failed


def markdown(record):
    mach = record["machine"]
    lines = [f"Machine: {mach.get('cpu_model', '?')}, {mach.get('physical_cores', '?')} physical "
             f"cores; int8 ISA: {json.dumps(record['int8_isa'])}; ONNX Runtime "
             f"{record['ort_version']}; commit {record['commit']}; {record['date']}; "
             f"{record['rounds']} rounds, {record['threads']} threads per side.", "",
             "| model | bus.jpg p50 baseline | bus.jpg p50 cvdeploy | faster by | images | "
             "img/s baseline | img/s cvdeploy | faster by | agreement |",
             "|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for m in record["models"]:
        s, d, a = m["single"], m["directory"], m["agreement"]
        lines.append(
            f"| {m['model']} | {statistics.median(s['plain_p50_ms']):.1f} ms | "
            f"{statistics.median(s['cvdeploy_p50_ms']):.1f} ms | {s['ratio']:.2f}x | "
            f"{d['images']} | {statistics.median(d['plain_ips']):.2f} | "
            f"{statistics.median(d['cvdeploy_ips']):.2f} | {d['ratio']:.2f}x | "
            f"{100 * a['fraction']:.1f}% |")
    return lines


def build(args):
    if args.plain:
        return
    args.plain = os.path.join(args.build_dir, "plain_ort")
    run(["cmake", "--build", args.build_dir, "--target", "cvdeploy_cli", "cvdeploy_plain_ort",
         "-j", "2"])


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=benchlib.REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--models", default="yolov8n-dq,yolo11n-dq")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--images", type=int, default=0, help="first N coco128 images (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="thread budget of each side "
                    "(0: the physical cores)")
    ap.add_argument("--require-ratio", type=float, default=0,
                    help="speed target for both ratios instead of 1.30/1.50")
    ap.add_argument("--plain", default=None, help="the baseline binary (default: build it)")
    ap.add_argument("--build-dir", default=os.path.join(benchlib.REPO_ROOT, "build"))
    ap.add_argument("--out", default=None, help="directory for side_by_side.json/.md")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rejudge", default=None, help="apply the targets to this record only")
    args = ap.parse_args()
    if args.rejudge:
        record = benchlib.load_json(args.rejudge)
        for line in markdown(record):
            print(line)
        failed = judge(record, args.require_ratio, True)
        print("side_by_side: " + ("FAIL" if failed else "PASS"))
        return 1 if failed else 0
    if args.smoke:
        args.rounds, args.iters, args.warmup, args.models = 1, 3, 1, "yolov8n-dq"
        args.images = args.images or 2
    if args.rounds < 1 or args.iters < 1:
        sys.exit("side_by_side: --rounds and --iters must be >= 1")
    args.threads = args.threads or physical_cores()
    build(args)
    bus = os.path.join(args.assets, "images", "bus.jpg")
    with tempfile.TemporaryDirectory(prefix="side_by_side_") as tmp:
        images_dir, count = image_dir(args, tmp)
        models, bench = [], None
        for name in args.models.split(","):
            rec, bench = measure_model(args, name, bus, images_dir, count, tmp)
            models.append(rec)
    record = {
        "machine": bench["machine"], "int8_isa": bench.get("int8_isa", {}),
        "ort_version": bench.get("ort_version", "?"), "commit": git_commit(),
        "cvdeploy_commit": bench.get("commit", "?"),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": args.rounds, "iters": args.iters, "threads": args.threads,
        "smoke": args.smoke,
        "targets": {"single_p50": SINGLE_TARGET, "throughput": THROUGHPUT_TARGET,
                    "agreement": AGREEMENT_TARGET},
        "models": models,
    }
    md = markdown(record)
    for line in md:
        print(line)
    failed = judge(record, args.require_ratio, not args.smoke or args.require_ratio > 0)
    if args.out:
        benchlib.write_report(args.out, "side_by_side", record, md)
        print(f"report: {os.path.join(args.out, 'side_by_side.json')}")
    print("side_by_side: " + ("FAIL" if failed else "PASS"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
