#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CPU time per image of several models (e.g. float vs int8), interleaved, for machines shared with other work.

    bench/cpu_time_bench.py --model FLOAT.onnx --model INT8.onnx [--threads 2] [--rounds 3]
                            [--source bus.jpg] [--short 4] [--long 24] [--smoke]

Wall-clock ratios on a machine loaded by other processes measure scheduling more than
kernels (a two-thread engine stalls whenever one of its threads is preempted). This script
reports the work instead: the user + system CPU time of `cvdeploy bench` per iteration (one
end-to-end prediction plus one bare-engine run), from the difference between a --long and a
--short run (start-up, model load and warm-up cancel out), models interleaved over --rounds
(order reversed every other round), median over rounds. The first model is the reference of
the ratios. Also printed: wall time per iteration and CPU/wall (the share of the cores the
process got, or, on a quiet machine, how well it kept its threads busy). CPU time counts work
done, not time spent waiting: it is no substitute for a wall-clock figure on a quiet machine.
No target is checked; exit status 0 when every run succeeded.
"""
import os
import resource
import statistics
import sys
import time

import benchlib
from benchlib import run


def measure(cli, model, source, threads, iters):
    """(CPU seconds, wall seconds) of one `cvdeploy bench` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    run([cli, "bench", "--model", model, "--source", source, "--warmup", "2",
         "--iters", str(iters), "--threads", str(threads)])
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, wall


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", action="append", required=True,
                    help="model file, or a sample model's name in the assets (repeat; the first "
                         "is the reference)")
    ap.add_argument("--source", default=None, help="image (default: the assets' bus.jpg)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--short", type=int, default=4, help="iterations of the short run")
    ap.add_argument("--long", type=int, default=24, help="iterations of the long run")
    ap.add_argument("--smoke", action="store_true", help="one round of 1 and 2 iterations")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.short, args.long = 1, 1, 2
    if args.long <= args.short:
        sys.exit("cpu_time_bench: --long must be larger than --short")
    source = args.source or os.path.join(args.assets, "images", "bus.jpg")
    args.model = [m if os.path.exists(m) else os.path.join(args.assets, "models", m + ".onnx")
                  for m in args.model]
    cpu = {m: [] for m in args.model}
    wall = {m: [] for m in args.model}
    n = args.long - args.short
    for r in range(args.rounds):
        for m in (args.model if r % 2 == 0 else args.model[::-1]):
            c_long, w_long = measure(args.cvdeploy, m, source, args.threads, args.long)
            c_short, w_short = measure(args.cvdeploy, m, source, args.threads, args.short)
            cpu[m].append((c_long - c_short) / n * 1000)
            wall[m].append((w_long - w_short) / n * 1000)
    print(f"\n{benchlib.cpu_model()}, {os.cpu_count()} logical cores, load average "
          f"{os.getloadavg()[0]:.1f}; threads {args.threads}, {args.rounds} rounds, "
          f"{args.long} - {args.short} iterations on {os.path.basename(source)}")
    base = statistics.median(cpu[args.model[0]])
    print("| model | CPU ms/iteration (min..max) | vs first | wall ms/iteration | CPU/wall |")
    print("|---|---:|---:|---:|---:|")
    for m in args.model:
        c, w = statistics.median(cpu[m]), statistics.median(wall[m])
        print(f"| {os.path.basename(m)} | {c:.1f} ({min(cpu[m]):.1f}..{max(cpu[m]):.1f}) "
              f"| {base / c if c > 0 else 0:.2f}x | {w:.1f} "
              f"| {f'{c / w:.2f}' if w > 0 else 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
