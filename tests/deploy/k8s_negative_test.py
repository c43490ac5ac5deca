#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The deployment validator can fail (CTest deploy_k8s_negative).

1. fixtures/broken (a Deployment, a ScaledObject and a ClusterServingRuntime with one defect
   per check): scripts/validate_k8s.py exits 1 and reports each defect.
2. A copy of deploy/kubernetes with two mutations in the real manifests (the readiness probe
   path and the HPA's metric name), and of deploy/kserve with the runtime serving a fixed
   model name instead of {{.Name}}: the validator, with its live server checks, reports all.
Usage: k8s_negative_test.py CVDEPLOY_BINARY. Exit 0 pass, 1 fail, 77 tools missing.
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "scripts" / "validate_k8s.py"
EXPECTED_BROKEN = [
    "containerPort must be integer",                 # kubernetes-models schema
    "must have required property scaleTargetRef",    # KEDA schema
    "protocolVersions/0 must be equal to one of",    # our KServe schema
    "supportedModelFormats/0 must NOT have additional properties",
    "image 'docker.io/someone/cvdeploy:1' is not localhost/cvdeploy:latest",
    "unknown serve flag '--prot=8080'",
    "livenessProbe path '/healthz' is not a server health route",
    "terminationGracePeriodSeconds 5 < preStop",
    "securityContext.runAsNonRoot must be True",
    "yamllint: ",
]
EXPECTED_MUTATED = [
    "readinessProbe path '/v2/health/readyz' is not a server health route",
    "readinessProbe GET /v2/health/readyz answered 4",
    "autoscaling metric cvdeploy_pending_request is not in /metrics",
    "model not served as {{.Name}}",
]


def validate(cvdeploy, dirs):
    out = subprocess.run([sys.executable, str(VALIDATOR), "--cvdeploy", cvdeploy, "--dirs", *dirs],
                         capture_output=True, text=True, timeout=170)
    return out.returncode, out.stdout + out.stderr


def main():
    cvdeploy = sys.argv[1]
    failures = 0
    rc, text = validate(cvdeploy, [str(ROOT / "tests/deploy/fixtures/broken")])
    if rc == 77:
        print(text)
        return 77
    for want in EXPECTED_BROKEN:
        if want not in text:
            failures += 1
            print(f"FAIL broken fixture: not reported: {want!r}")
    if rc != 1:
        failures += 1
        print(f"FAIL broken fixture: validator exit {rc}, want 1")
    with tempfile.TemporaryDirectory() as tmp:
        k8s = Path(tmp) / "kubernetes"
        shutil.copytree(ROOT / "deploy" / "kubernetes", k8s)
        dep = k8s / "base" / "deployment.yaml"
        text_dep = dep.read_text()
        marker = "readinessProbe:\n            httpGet:\n              path: /v2/health/ready\n"
        assert marker in text_dep, "deployment.yaml changed: update this test's mutation"
        dep.write_text(text_dep.replace(marker, marker.replace("ready\n", "readyz\n")))
        hpa = k8s / "base" / "hpa.yaml"
        hpa.write_text(hpa.read_text().replace("name: cvdeploy_pending_requests",
                                               "name: cvdeploy_pending_request"))
        rc, text = validate(cvdeploy, [str(k8s / "overlays" / "cpu")])
        kserve = Path(tmp) / "kserve"
        shutil.copytree(ROOT / "deploy" / "kserve", kserve)
        rt = kserve / "cluster-serving-runtime.yaml"
        assert "model.onnx:{{.Name}}" in rt.read_text(), "runtime changed: update this test"
        rt.write_text(rt.read_text().replace("model.onnx:{{.Name}}", "model.onnx:fixed-name"))
        rc2, text2 = validate(cvdeploy, [str(kserve)])
        rc, text = (rc2 if rc == 1 else rc), text + text2  # both must be 1
    for want in EXPECTED_MUTATED:
        if want not in text:
            failures += 1
            print(f"FAIL mutated overlay: not reported: {want!r}")
    if rc != 1:
        failures += 1
        print(f"FAIL mutated overlay: validator exit {rc}, want 1")
    if failures:
        print(text)
    print(f"{len(EXPECTED_BROKEN) + len(EXPECTED_MUTATED)} expected findings, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
