#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/prometheus against promtool and a running server (CTest deploy_prometheus).

1. `promtool check rules` on every rule file, `promtool test rules` on tests/deploy/prometheus.
2. Starts `cvdeploy serve` on 127.0.0.1 with a good model and a broken one (so that the load
   failure counter exists), the good one with a drift baseline beside it (profile-data on
   bus.jpg) and sampling at rate 1, POSTs one image (so that the drift gauges and the sample
   counters have values), fetches /metrics and runs `promtool check metrics` on it. Every
   finding fails (KNOWN_FINDINGS, empty today, would list accepted ones with the reason).
3. Every cvdeploy_* metric the rules use is exposed by the server, except those in
   NOT_YET_EXPOSED (reported).
Usage: prometheus_test.py CVDEPLOY_BINARY. Exit 0 pass, 1 fail, 77 promtool missing.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import serve_process

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*.yml"))
TESTS = sorted((ROOT / "tests" / "deploy" / "prometheus").glob("*.test.yml"))
ASSETS = Path(os.environ.get("CVDEPLOY_ASSETS", ROOT.parent / "shared" / "assets"))
MODEL = ASSETS / "models" / "yolo11n-dq.onnx"
IMAGE = ASSETS / "images" / "bus.jpg"
# promtool's lint of the server's /metrics must be clean: no known findings.
KNOWN_FINDINGS = set()
# Used by the rules but not exposed by this server: the certificate expiry exists only when
# serving TLS (docs/server.md "Metrics").
NOT_YET_EXPOSED = {"cvdeploy_tls_certificate_expiry_timestamp_seconds"}
# Exposed only with a drift baseline / sampling on, which this server has: they must be linted.
MONITOR_SERIES = [r'^cvdeploy_drift_psi\{model="yolo11n",version="1",feature="brightness"\} ',
                  r'^cvdeploy_samples_total\{result="written"\} 1$',
                  r'^cvdeploy_samples_stored_bytes ']

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)
        print("FAIL", message)
    return cond


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def promtool_rules():
    out = run(["promtool", "check", "rules", *map(str, RULES)])
    check(out.returncode == 0, f"promtool check rules: {out.stdout}{out.stderr}")
    for t in TESTS:
        out = run(["promtool", "test", "rules", t.name], cwd=t.parent)
        check(out.returncode == 0, f"promtool test rules {t.name}: {out.stdout}{out.stderr}")
    check(RULES and TESTS, "no rule files or no rule tests found")


def post_image(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/yolo11n/predict",
                                 data=IMAGE.read_bytes(), headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def scrape(cvdeploy):
    with tempfile.TemporaryDirectory() as repo:
        Path(f"{repo}/yolo11n/1").mkdir(parents=True)
        shutil.copy(MODEL, f"{repo}/yolo11n/1/model.onnx")
        Path(f"{repo}/broken/1").mkdir(parents=True)
        Path(f"{repo}/broken/1/model.onnx").write_bytes(b"not an onnx model")
        out = run([cvdeploy, "profile-data", "--model", f"{repo}/yolo11n/1/model.onnx",
                   "--images", str(IMAGE), "--out", f"{repo}/yolo11n/1/baseline.json"])
        check(out.returncode == 0, f"profile-data: {out.stderr}")
        args = ["--host=127.0.0.1", "--port=0", f"--model-repository={repo}", "--instances=1",
                "--threads=1", "--exit-on-error=false", "--access-log=/dev/null",
                "--sample-rate=1", f"--sample-dir={repo}-samples"]
        try:
            with serve_process.Server(cvdeploy, args) as srv:
                srv._listening.wait(30)
                deadline, text, posted = time.monotonic() + 90, "", False
                while time.monotonic() < deadline and srv.port:
                    status, text = srv.get("/metrics")
                    loaded = re.search(r'^cvdeploy_model_ready\{model="yolo11n",version="1"\} 1$', text, re.M)
                    if loaded and not posted:
                        posted = True
                        check(post_image(srv.port) == 200, "predict on yolo11n failed")
                    if loaded and "cvdeploy_model_load_failures_total{" in text \
                            and all(re.search(p, text, re.M) for p in MONITOR_SERIES):
                        break
                    time.sleep(0.3)
                else:
                    missing = [p for p in MONITOR_SERIES if not re.search(p, text, re.M)]
                    check(False, f"server never loaded yolo11n, failed broken and exposed {missing}: "
                                 f"{srv.log_tail()}")
                check(srv.stop() == 0, "server did not exit 0 on SIGTERM")
                return text
        finally:
            shutil.rmtree(f"{repo}-samples", ignore_errors=True)


def main():
    if not shutil.which("promtool"):
        print("SKIP: promtool missing; run scripts/setup-k8s.sh")
        return 77
    cvdeploy = sys.argv[1]
    promtool_rules()
    text = scrape(cvdeploy)
    out = run(["promtool", "check", "metrics"], input=text)
    findings = {line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()}
    for f in sorted(findings & KNOWN_FINDINGS):
        print("known promtool finding:", f)
    for f in sorted(findings - KNOWN_FINDINGS):
        check(False, f"promtool check metrics: {f}")
    for f in sorted(KNOWN_FINDINGS - findings):
        print("note: known finding no longer reported (remove it from KNOWN_FINDINGS):", f)
    exposed = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    check(len(exposed) > 10, f"too few metric families in /metrics: {sorted(exposed)}")
    used = set()
    for r in RULES:
        for name in re.findall(r"\b(cvdeploy_[a-z_]+)", r.read_text()):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    for name in sorted(used - exposed):
        if name in NOT_YET_EXPOSED:
            print("not exposed by this server (expected):", name)
        else:
            check(False, f"rules use {name}, which the server does not expose")
    print(f"{len(RULES)} rule file(s), {len(TESTS)} rule test file(s), {len(used)} metrics used, "
          f"{len(findings)} promtool finding(s), {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
