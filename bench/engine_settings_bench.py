#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Engine settings in the three modes of issue 16, interleaved rounds: thread spinning on vs
off (`--axis spin`, the default) or ONNX Runtime's graph optimization levels (`--axis
graph-opt`: all, extended, basic, disable).

    bench/engine_settings_bench.py [--cvdeploy build/cvdeploy] [--assets DIR]
        [--model yolo11n-dq] [--axis spin|graph-opt] [--rounds 4] [--iters 40] [--images 86]
        [--requests 64] [--concurrency 4] [--out DIR] [--smoke]

Modes, each run with every value of the axis, e.g. `--spin on` and `--spin off` (what
`--spin auto` picks is printed too):
  a  one image at a time with every core: `cvdeploy bench --source bus.jpg` (end-to-end p50
     and the bare engine's p50, measured in the same run on the same session);
  b  the directory pipeline: `cvdeploy bench --source DIR` over the first --images coco128
     images (throughput);
  c  the server under load: `cvdeploy serve`, --requests POSTs of bus.jpg over --concurrency
     keep-alive connections (throughput; the server's CPU time per request).
Rounds alternate the order of the settings (on, off, then off, on) so a drift of the
machine's speed hits all alike; figures are medians over rounds, with how much better the
first setting (spin on; graph-opt all, ONNX Runtime's default) is than each other one per
figure (throughputs first/other, times other/first; > 1: the first is better). Every run also
records its CPU time (user + system of the child process): on a host shared with other work,
wall-clock ratios measure the scheduler as much as the engine, so the CPU time is printed
beside them. The machine (CPU model, cores, load average before and after) is printed with the
figures. --smoke: one round, a few iterations, images and requests; it only keeps the script
working, its figures mean nothing. No target is checked; exit status 0 when every run
succeeded.
"""
import os
import resource
import statistics
import sys
import tempfile
import time

import benchlib
from benchlib import run
import serve_bench

AXES = {"spin": ("on", "off"), "graph-opt": ("all", "extended", "basic", "disable")}


def machine():
    return {"cpu": benchlib.cpu_model(), "logical_cores": os.cpu_count(),
            "load_average": os.getloadavg()}


def children_cpu():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def bench_json(cli, model, source, setting, iters, warmup, tmp):
    """One `cvdeploy bench` run with `setting` (its command-line flags): (its first result
    record, the child's CPU seconds)."""
    out = os.path.join(tmp, "bench.json")
    cpu0 = children_cpu()
    run([cli, "bench", "--model", model, "--source", source, *setting, "--iters", str(iters),
         "--warmup", str(warmup), "--json", out])
    return benchlib.load_json(out)["results"][0], children_cpu() - cpu0


def process_cpu(pid):
    """User + system CPU seconds of a running process (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mode_a(args, setting, tmp):
    r, cpu = bench_json(args.cvdeploy, args.model, args.bus, setting, args.iters, args.warmup, tmp)
    return {"e2e_p50_ms": r["stages_ms"]["end_to_end"]["p50"],
            "bare_p50_ms": r["bare_engine_ms"]["p50"],
            "cpu_ms_per_iter": 1000 * cpu / (args.iters + args.warmup), "spin": r.get("spin")}


def mode_b(args, setting, tmp):
    r, cpu = bench_json(args.cvdeploy, args.model, args.image_dir, setting, args.images, 2, tmp)
    return {"throughput_ips": r["throughput_ips"], "cpu_ms_per_image": 1000 * cpu / args.images,
            "spin": r.get("spin")}


def mode_c(args, setting, tmp):
    proc, port = serve_bench.start_server(args.cvdeploy, args.model, tmp, setting)
    try:
        with open(args.bus, "rb") as f:
            body = f.read()
        path = "/v1/models/" + os.path.splitext(os.path.basename(args.model))[0] + "/predict"
        serve_bench.send_requests(port, path, body, 2 * args.concurrency, args.concurrency)
        cpu0 = process_cpu(proc.pid)
        t0 = time.monotonic()
        state = serve_bench.send_requests(port, path, body, args.requests, args.concurrency)
        wall = time.monotonic() - t0
        cpu = process_cpu(proc.pid) - cpu0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if state["non2xx"] or state["socket_errors"]:
        raise SystemExit(f"server mode: {state}")
    return {"throughput_rps": state["requests"] / wall,
            "cpu_ms_per_request": 1000 * cpu / max(1, state["requests"])}


MODES = {"a": ("one image, every core", mode_a),
         "b": ("directory pipeline", mode_b),
         "c": ("server under load", mode_c)}


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", default="yolo11n-dq",
                    help="model file, or a sample model's name in the assets")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=40, help="mode a: measured iterations")
    ap.add_argument("--warmup", type=int, default=5, help="mode a: warm-up iterations")
    ap.add_argument("--images", type=int, default=86, help="mode b: coco128 images")
    ap.add_argument("--requests", type=int, default=64, help="mode c: requests per run")
    ap.add_argument("--concurrency", type=int, default=4, help="mode c: connections")
    ap.add_argument("--modes", default="abc", help="which modes to run (default: abc)")
    ap.add_argument("--axis", choices=sorted(AXES), default="spin",
                    help="the setting compared: spin on/off or the graph optimization levels")
    ap.add_argument("--out", default=None, help="write engine_settings.json and .md here")
    ap.add_argument("--smoke", action="store_true", help="one tiny round of every mode")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.iters, args.warmup, args.images, args.requests, args.concurrency = (
            1, 2, 1, 3, 4, 2)
    if not os.path.exists(args.model):
        args.model = os.path.join(args.assets, "models", args.model + ".onnx")
    args.bus = os.path.join(args.assets, "images", "bus.jpg")
    # Absolute: the images are linked from a temporary directory.
    coco = os.path.abspath(os.path.join(args.assets, "datasets", "coco128", "images"))
    before = machine()
    settings = AXES[args.axis]
    results = {m: {s: [] for s in settings} for m in args.modes}
    with tempfile.TemporaryDirectory(prefix="engine-settings-") as tmp:
        args.image_dir = os.path.join(tmp, "images")
        os.makedirs(args.image_dir)
        for name in sorted(os.listdir(coco))[:args.images]:
            os.symlink(os.path.join(coco, name), os.path.join(args.image_dir, name))
        args.images = len(os.listdir(args.image_dir))
        for r in range(args.rounds):
            for m in args.modes:
                for s in (settings if r % 2 == 0 else settings[::-1]):
                    results[m][s].append(MODES[m][1](args, ("--" + args.axis, s), tmp))
    after = machine()
    report = {"machine": before, "load_average_after": after["load_average"],
              "model": args.model, "axis": args.axis, "rounds": args.rounds, "smoke": args.smoke,
              "modes": {}}
    lines = [f"machine: {before['cpu']}, {before['logical_cores']} logical cores, load average "
             f"{before['load_average'][0]:.2f} before, {after['load_average'][0]:.2f} after",
             f"model: {args.model}, {args.rounds} interleaved round(s)"
             + (" (smoke: figures mean nothing)" if args.smoke else ""), "",
             "| mode | figure | " + " | ".join(f"{args.axis} {s}" for s in settings) + " | "
             + " | ".join(f"{settings[0]} better than {s} by" for s in settings[1:])
             + " (> 1: the first is better) |",
             "|---|---|" + "---|" * (2 * len(settings) - 1)]
    for m in args.modes:
        title = MODES[m][0]
        med = {s: {k: statistics.median(x[k] for x in results[m][s])
                   for k, v in results[m][s][0].items() if isinstance(v, (int, float))}
               for s in settings}
        report["modes"][m] = {"title": title, "median": med, "runs": results[m]}
        for k in med[settings[0]]:
            first = med[settings[0]][k]
            ratios = []
            for s in settings[1:]:
                other = med[s][k]
                # Throughput: first / other; times (latency, CPU per item): other / first.
                ratios.append((first / other if k.startswith("throughput") else other / first)
                              if first and other else 0)
            lines.append(f"| {m}: {title} | {k} | "
                         + " | ".join(f"{med[s][k]:.2f}" for s in settings) + " | "
                         + " | ".join(f"{x:.3f}" for x in ratios) + " |")
    print("\n".join(lines))
    if args.out:
        benchlib.write_report(args.out, "engine_settings", report, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
