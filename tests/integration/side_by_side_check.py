#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks bench/side_by_side.py (CTest bench_side_by_side_smoke and bench_side_by_side_judge).

    side_by_side_check.py smoke --cvdeploy BIN --plain BIN --out DIR
    side_by_side_check.py judge

smoke: one --smoke run of the real programs must exit 0 and write a well-formed record (every
figure present, positive and finite, machine, int8 ISA and commit recorded, one PASS/FAIL line
per target); the same record re-judged with --require-ratio 1000 must report FAIL and exit 1.
judge: the PASS/FAIL logic on a fixed record (tests/fixtures/side_by_side/record.json, ratios
1.22x and 1.40x, 99% agreement): FAIL against the issue's targets, PASS at 1.0, FAIL at 1000.
"""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "side_by_side.py")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "side_by_side", "record.json")


def script(*args):
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def expect(ok, what, output=""):
    if not ok:
        sys.exit(f"side_by_side_check: {what}\n{output}")


def positive(x):
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_record(record):
    for key in ("machine", "int8_isa", "ort_version", "commit", "date", "rounds", "threads",
                "targets", "models"):
        expect(key in record, f"record lacks '{key}'")
    expect(record["machine"].get("cpu_model"), "no cpu_model in the record")
    expect(isinstance(record["int8_isa"].get("avx512_vnni"), bool), "no int8 ISA in the record")
    expect(record["commit"] and record["commit"] != "unknown", "no commit in the record")
    expect(len(record["models"]) == 1, "smoke measures one model")
    m = record["models"][0]
    for side in ("plain_p50_ms", "cvdeploy_p50_ms"):
        expect(len(m["single"][side]) == record["rounds"], f"single {side}: one value per round")
        expect(all(positive(v) for v in m["single"][side]), f"single {side}: {m['single'][side]}")
    for side in ("plain_ips", "cvdeploy_ips"):
        expect(all(positive(v) for v in m["directory"][side]), f"directory {side}")
    expect(positive(m["single"]["ratio"]) and positive(m["directory"]["ratio"]), "ratios")
    expect(m["directory"]["images"] == 2, "smoke uses 2 images")
    a = m["agreement"]
    expect(a["detections"] > 0 and 0 <= a["fraction"] <= 1, f"agreement {a}")


def smoke(args):
    opts = dict(zip(args[::2], args[1::2]))
    out = opts["--out"]
    code, output = script("--smoke", "--cvdeploy", opts["--cvdeploy"], "--plain", opts["--plain"],
                          "--out", out)
    expect(code == 0, f"--smoke exited {code}", output)
    lines = [line for line in output.splitlines() if line.startswith(("PASS ", "FAIL "))]
    expect(len(lines) == 3, "expected 3 PASS/FAIL lines", output)
    expect("side_by_side: PASS" in output, "no final verdict", output)
    with open(os.path.join(out, "side_by_side.json")) as f:
        check_record(json.load(f))
    with open(os.path.join(out, "side_by_side.md")) as f:
        expect("| model | bus.jpg p50 baseline |" in f.read(), "Markdown table missing")
    code, output = script("--rejudge", os.path.join(out, "side_by_side.json"),
                          "--require-ratio", "1000")
    expect(code == 1 and "FAIL " in output and "side_by_side: FAIL" in output,
           f"--require-ratio 1000 must fail (exit {code})", output)


def judge():
    code, output = script("--rejudge", FIXTURE)
    fails = [line for line in output.splitlines() if line.startswith("FAIL ")]
    expect(code == 1 and len(fails) == 2, "1.22x/1.40x must fail both speed targets", output)
    expect(any(line.startswith("PASS ") and "agree" in line for line in output.splitlines()),
           "99% agreement must pass", output)
    code, output = script("--rejudge", FIXTURE, "--require-ratio", "1.0")
    expect(code == 0 and "side_by_side: PASS" in output, "ratios above 1.0 must pass", output)
    code, output = script("--rejudge", FIXTURE, "--require-ratio", "1000")
    expect(code == 1 and "side_by_side: FAIL" in output, "--require-ratio 1000 must fail", output)


if __name__ == "__main__":
    if sys.argv[1:2] == ["smoke"]:
        smoke(sys.argv[2:])
    elif sys.argv[1:2] == ["judge"]:
        judge()
    else:
        sys.exit(__doc__)
    print("side_by_side_check: OK")
