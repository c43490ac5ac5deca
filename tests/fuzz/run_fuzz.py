#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs the libFuzzer targets of tests/fuzz (built by `make fuzz` in build-fuzz/fuzz/).

For each target, in this order:
  1. regression check: every file of tests/fuzz/regressions/<target>/ is run once, one
     process per file (so each crashing file is named), then the whole seed corpus (the
     committed seeds plus those derived from the sample assets, see make_seeds.py) in one
     process;
  2. fuzzing from the seeds and the working corpus BUILD/corpus/<target>/ (kept between runs,
     never in the repository) for --seconds, or until --runs executions or --max-seconds;
     crash inputs go to BUILD/crashes/<target>/.
Targets run --jobs at a time. Prints one line per target (executions, cov, ft, corpus,
crashes) and, with --table, writes the same as a Markdown table. Exits 1 when any
regression input or fuzzing run crashed (listing the input files), 2 on a usage or setup
error (a missing target binary counts: a target that was not built was not tested).
"""
import argparse
import concurrent.futures
import datetime
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUZZ_DIR = REPO / "tests" / "fuzz"

# Per-target libFuzzer options beyond the common ones.
EXTRA_OPTIONS = {
    # The server's I/O thread allocates while an input runs, so libFuzzer's per-input
    # malloc/free balance never holds and it would run a full leak check after every input
    # (4x slower). Leaks are still checked when the process exits.
    "http_transport": ["-detect_leaks=0"],
}


def targets_in(build):
    names = sorted(p.name[:-len("_fuzz.cpp")] for p in FUZZ_DIR.glob("*_fuzz.cpp"))
    missing = [n for n in names if not (build / "fuzz" / ("fuzz_" + n)).is_file()]
    if missing:
        sys.exit("run_fuzz: not built: %s (run `make fuzz`)" % ", ".join(missing))
    return names


def run(cmd, log, timeout):
    """Runs cmd with output appended to log; returns (exit code, output text)."""
    with open(log, "ab") as f:
        f.write(("\n$ %s\n" % " ".join(str(c) for c in cmd)).encode())
        f.flush()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout, cwd=log.parent)
            out = proc.stdout
            code = proc.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout or b""
            code = "timeout"
        f.write(out)
    return code, out.decode(errors="replace")


def crash_files(output):
    return re.findall(r"Test unit written to (\S+)", output)


def fuzz_target(name, args, build):
    binary = build / "fuzz" / ("fuzz_" + name)
    logs = build / "logs"
    log = logs / (name + ".log")
    log.unlink(missing_ok=True)
    seeds = build / "seeds" / name
    seeds.mkdir(parents=True, exist_ok=True)
    corpus = build / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes = build / "crashes" / name
    crashes.mkdir(parents=True, exist_ok=True)
    common = ["-print_final_stats=1", "-timeout=30", "-rss_limit_mb=2560",
              "-artifact_prefix=%s/" % crashes] + EXTRA_OPTIONS.get(name, [])
    result = {"target": name, "executions": 0, "seconds": 0.0, "cov": 0, "ft": 0, "corpus": 0,
              "crashes": [], "regressions": 0, "seeds": 0}

    # 1. Regression inputs, one process each, then the seeds in one process.
    regressions = sorted(p for p in (FUZZ_DIR / "regressions" / name).glob("*") if p.is_file())
    result["regressions"] = len(regressions)
    for path in regressions:
        code, _ = run([binary] + common + [path], log, 120)
        if code != 0:
            result["crashes"].append("regression %s (exit %s)" % (path.relative_to(REPO), code))
    seed_files = sorted(p for p in seeds.iterdir() if p.is_file())
    result["seeds"] = len(seed_files)
    if seed_files:
        code, out = run([binary] + common + seed_files, log, 600)
        if code != 0:
            failing = re.findall(r"Running: (\S+)\n(?!Executed)", out)
            result["crashes"].append("seed %s (exit %s)" % (failing[-1] if failing else "?", code))

    # 2. Fuzzing.
    options = list(common)
    if args.runs:
        options += ["-runs=%d" % args.runs, "-max_total_time=%d" % args.max_seconds]
    else:
        options += ["-max_total_time=%d" % args.seconds]
    dictionary = FUZZ_DIR / "dict" / (name + ".dict")
    if dictionary.is_file():
        options.append("-dict=%s" % dictionary)
    start = time.monotonic()
    limit = (args.max_seconds if args.runs else args.seconds) + 300
    code, out = run([binary] + options + [corpus, seeds], log, limit)
    result["seconds"] = round(time.monotonic() - start, 1)
    m = re.search(r"stat::number_of_executed_units: (\d+)", out)
    result["executions"] = int(m.group(1)) if m else 0
    status = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", out)
    if status:
        result["cov"], result["ft"], result["corpus"] = map(int, status[-1])
    if code != 0:
        found = crash_files(out)
        result["crashes"] += ["fuzzing %s" % f for f in found] or ["fuzzing exit %s" % code]
    return result


def markdown(results, args):
    mode = ("until %d executions or %d s" % (args.runs, args.max_seconds) if args.runs
            else "%d s each" % args.seconds)
    lines = ["Fuzzing run: %s, %d at a time, %s UTC, commit %s." % (
        mode, args.jobs, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, text=True,
                       capture_output=True).stdout.strip() or "unknown"), "",
             "| target | executions | seconds | cov | ft | corpus | crashes |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append("| %s | %d | %.0f | %d | %d | %d | %d |" % (
            r["target"], r["executions"], r["seconds"], r["cov"], r["ft"], r["corpus"],
            len(r["crashes"])))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=REPO / "build-fuzz")
    parser.add_argument("--seconds", type=int, default=10, help="fuzzing time per target")
    parser.add_argument("--runs", type=int, default=0,
                        help="instead of --seconds: stop after this many executions ...")
    parser.add_argument("--max-seconds", type=int, default=600, help="... or this many seconds")
    parser.add_argument("--jobs", type=int, default=2, help="targets run at the same time")
    parser.add_argument("--targets", default="", help="comma-separated subset")
    parser.add_argument("--table", type=Path, help="also write a Markdown table here")
    args = parser.parse_args()
    build = args.build.resolve()
    names = targets_in(build)
    if args.targets:
        wanted = args.targets.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            sys.exit("run_fuzz: unknown targets: %s" % ", ".join(unknown))
        names = [n for n in names if n in wanted]
    (build / "logs").mkdir(exist_ok=True)
    subprocess.run([sys.executable, str(FUZZ_DIR / "make_seeds.py"), "--out",
                    str(build / "seeds")], check=True)

    start = time.monotonic()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for r in pool.map(lambda n: fuzz_target(n, args, build), names):
            results.append(r)
            print("%-18s %9d execs %6.1f s  cov %5d  ft %6d  corpus %5d  regressions %d  "
                  "seeds %3d  crashes %d" % (r["target"], r["executions"], r["seconds"], r["cov"],
                                             r["ft"], r["corpus"], r["regressions"], r["seeds"],
                                             len(r["crashes"])), flush=True)
            for c in r["crashes"]:
                print("    CRASH %s: %s" % (r["target"], c), flush=True)
    if args.table:
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(markdown(results, args))
        print("table: %s" % args.table)
    failed = [r for r in results if r["crashes"]]
    print("fuzz: %d targets, %.0f s, %s (logs: %s/logs)" % (
        len(results), time.monotonic() - start,
        "%d with crashes" % len(failed) if failed else "no crashes", build))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
