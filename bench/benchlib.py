# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the benchmark scripts in bench/: the common command-line options,
running a command with its output captured, reading JSON, and the PASS/FAIL list of targets."""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def argument_parser(doc):
    """A parser described by the first line of `doc`, with --cvdeploy (the binary) and
    --assets (the sample models and data; $CVDEPLOY_ASSETS or ../shared/assets)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--cvdeploy", default=os.path.join(REPO_ROOT, "build", "cvdeploy"))
    # Absolute: several scripts link assets into temporary directories.
    ap.add_argument("--assets", type=os.path.abspath, default=os.environ.get(
        "CVDEPLOY_ASSETS", os.path.join(REPO_ROOT, "..", "shared", "assets")))
    return ap


def run(cmd, ok_codes=(0,), shown=None, **kw):
    """Runs cmd (printing it, or `shown` in its place); exits the script with the command's
    output when its exit code is not in ok_codes."""
    print("$ " + " ".join(shown if shown is not None else cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode not in ok_codes:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"command failed with exit code {proc.returncode}: {' '.join(cmd)}")
    return proc


def git_commit():
    """The checked-out commit (12 hex digits) that a report's figures come from."""
    return run(["git", "-C", REPO_ROOT, "rev-parse", "--short=12", "HEAD"]).stdout.strip()


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (platform.processor() where it has none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_report(out_dir, name, report, md_lines):
    """Writes NAME.json (the report) and NAME.md (the Markdown lines) into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, name + ".md"), "w") as f:
        f.write("\n".join(md_lines) + "\n")


def process_cpu_seconds(pid):
    """User + system CPU seconds used so far by process `pid` and all its threads (Linux
    /proc/PID/stat). The difference over a load phase is the work the server did for it,
    which, unlike requests per second, hardly depends on what else the machine runs."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def interleaved_speeds(cli, models, source, out, rounds, iters, prefix=""):
    """Median end-to-end p50 (ms) and images/s of each model ({tag: path}) from `cvdeploy
    bench` on `source`, measured in rounds that cycle through the models, so that a machine
    whose speed drifts affects every model alike. `iters`: bench's --warmup/--iters flags."""
    samples = {tag: [] for tag in models}
    for r in range(rounds):
        for tag, path in models.items():
            bjson = os.path.join(out, f"{prefix}{tag}_bench{r}.json")
            run([cli, "bench", "--model", path, "--source", source, "--json", bjson] + iters)
            res = load_json(bjson)["results"][0]
            samples[tag].append((res["stages_ms"]["end_to_end"]["p50"], res["throughput_ips"]))
    return {tag: (statistics.median(s[0] for s in v), statistics.median(s[1] for s in v))
            for tag, v in samples.items()}


def load_json(path):
    with open(path) as f:
        return json.load(f)


class Checks:
    """Targets checked by a benchmark: prints one PASS/FAIL line each and counts failures."""

    def __init__(self):
        self.failed = 0
        self.lines = []

    def check(self, name, ok, detail):
        line = f"{'PASS' if ok else 'FAIL'}  {name}: {detail}"
        print(line, flush=True)
        self.lines.append(line)
        self.failed += 0 if ok else 1

    def finish(self, out_dir, file_name, md):
        """Writes the Markdown `md` to out_dir/file_name, prints it with the failure count and
        returns the script's exit status (1 when a target failed)."""
        with open(os.path.join(out_dir, file_name), "w") as f:
            f.write(md)
        print("\n" + md + f"\noutputs in {out_dir}; {self.failed} failed", flush=True)
        return 1 if self.failed else 0
