#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Validates deploy/kubernetes and deploy/kserve (tests/deploy; docs/deploy.md).

1. `kubectl kustomize` renders every overlay, the Prometheus Adapter config and the KServe
   manifests (or the directories given with --dirs).
2. Every rendered object validates against bundled schemas (tests/deploy/validate_objects.mjs:
   npm kubernetes-models and its KEDA / Prometheus Operator packages; our JSON schema for KServe).
3. `yamllint` (the repository's .yamllint) is clean on the sources.
4. Cross-checks against the server: every serve flag in the args exists (`cvdeploy serve
   --help`), the image is `make image`'s tag, probes use named ports that exist and paths the
   server answers, the container port is the server's --port, terminationGracePeriodSeconds
   covers preStop + --drain-timeout, the restricted securityContext is there, Service /
   ServiceMonitor / NetworkPolicy ports match the container's.
5. With --cvdeploy: starts the server on 127.0.0.1 with each Deployment's own args (repository,
   ConfigMap config.json and all; host, port and paths replaced by local ones), GETs the probe
   paths and /metrics, and checks that every metric the autoscalers use appears in /metrics;
   the same for each KServe runtime's args (a /mnt/models holding model.onnx, {{.Name}} set).

Exit status: 0 all passed, 1 a check failed, 77 a tool is missing (run scripts/setup-k8s.sh).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "deploy"))
import serve_process  # noqa: E402  (tests/deploy/serve_process.py)

IMAGE = "localhost/cvdeploy:latest"  # the tag `make image` produces
OTHER_IMAGES = {"localhost/cvdeploy-models:latest"}  # components/model-packages' model image
NODE_MODULES = ROOT / ".deps" / "node" / "k8s" / "node_modules"
SAMPLE_MODEL = ROOT.parent / "shared" / "assets" / "models" / "yolo11n-dq.onnx"
RESTRICTED = {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
              "allowPrivilegeEscalation": False}


def default_dirs():
    k8s = ROOT / "deploy" / "kubernetes"
    dirs = sorted(p for p in (k8s / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    return dirs + [k8s / "prometheus-adapter", ROOT / "deploy" / "kserve"]


class Checker:
    def __init__(self):
        self.failures = []

    def fail(self, where, message):
        self.failures.append(f"{where}: {message}")
        print(f"FAIL {where}: {message}")

    def expect(self, cond, where, message):
        if not cond:
            self.fail(where, message)
        return cond


def render(directory):
    import yaml
    out = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return [d for d in yaml.safe_load_all(out.stdout) if d], ""


def validate_schemas(items, ck):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([{"source": s, "object": o} for s, o in items], f)
        path = f.name
    try:
        out = subprocess.run(["node", str(ROOT / "tests" / "deploy" / "validate_objects.mjs"),
                              str(NODE_MODULES), path], capture_output=True, text=True,
                             timeout=120)
    finally:
        os.unlink(path)
    for line in out.stdout.splitlines():
        if line.startswith("FAIL "):
            ck.fail("schema", line[5:])
    if out.returncode not in (0, 1) or (out.returncode == 1 and "FAIL" not in out.stdout):
        ck.fail("schema", f"validator error: {out.stderr.strip()[:500]}")
    return len(out.stdout.splitlines())


def yamllint(paths, ck):
    out = subprocess.run(["yamllint", "-c", str(ROOT / ".yamllint"), "-f", "parsable"]
                         + [str(p) for p in paths], capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        ck.fail("yamllint", line)
    if out.returncode != 0 and not out.stdout:
        ck.fail("yamllint", out.stderr.strip()[:500])


def serve_flags(cvdeploy):
    """The serve flags: from `cvdeploy serve --help`, else from the source of the command."""
    if cvdeploy:
        text = subprocess.run([cvdeploy, "serve", "--help"], capture_output=True, text=True,
                              timeout=30).stdout
        return set(re.findall(r"^\s+(--[a-z][a-z0-9-]*)", text, re.M))
    text = "".join(p.read_text() for p in [ROOT / "src/cli/cmd_serve.cpp", ROOT / "src/cli/options.cpp"])
    return set(re.findall(r'add_(?:option|flag)\(\s*"(--[a-z][a-z0-9-]*)', text))


def source_routes():
    """The server's health routes, from the endpoint table of docs/server.md (the live check
    with --cvdeploy then GETs them from a running server)."""
    text = (ROOT / "docs/server.md").read_text()
    return set(re.findall(r"^\| GET \| `(/v2/health/[a-z]+)`", text, re.M))


def default_port():
    m = re.search(r'auto port = std::make_shared<int>\((\d+)\)',
                  (ROOT / "src/cli/cmd_serve.cpp").read_text())
    return int(m.group(1)) if m else None


def arg_value(args, flag):
    for a in args:
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def pod_specs(obj):
    kind = obj.get("kind")
    if kind == "Deployment":
        return obj["spec"]["template"]["spec"]
    if kind in ("ClusterServingRuntime", "ServingRuntime"):
        return obj["spec"]
    return None


def server_container(spec):
    """The server: the container named cvdeploy (KServe: kserve-container), else the first."""
    named = [c for c in spec["containers"] if c["name"] in ("cvdeploy", "kserve-container")]
    return (named or spec["containers"])[0]


def check_container_security(where, c, pod_sc, ck):
    sc = dict(pod_sc or {})
    sc.update(c.get("securityContext") or {})
    for key, want in RESTRICTED.items():
        ck.expect(sc.get(key) == want, where, f"securityContext.{key} must be {want}")
    ck.expect(sc.get("runAsUser") == 10001, where, "securityContext.runAsUser must be 10001")
    ck.expect("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), where,
              "capabilities must drop ALL")
    ck.expect((sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where,
              "seccompProfile must be RuntimeDefault")


def check_server_container(where, c, spec, flags, routes, ck):
    args = c.get("args") or []
    for a in args:
        flag = a.split("=", 1)[0]
        ck.expect(a.startswith("--") and flag in flags, where, f"unknown serve flag {a!r}")
    port = int(arg_value(args, "--port") or default_port())
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    ck.expect(port in ports.values(), where, f"no containerPort {port} (the server's --port)")
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = c.get(probe_name)
        if not ck.expect(probe is not None, where, f"{probe_name} missing"):
            continue
        get = probe.get("httpGet") or {}
        ck.expect(get.get("path") in routes, where,
                  f"{probe_name} path {get.get('path')!r} is not a server health route {sorted(routes)}")
        p = get.get("port")
        ck.expect(ports.get(p, p) == port, where, f"{probe_name} port {p!r} is not {port}")
    ck.expect(arg_value(args, "--host") == "0.0.0.0", where, "--host=0.0.0.0 needed in a pod")
    drain = float(arg_value(args, "--drain-timeout") or 30)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    sleep = 0
    pre = ((c.get("lifecycle") or {}).get("preStop") or {})
    if pre:
        cmd = (pre.get("exec") or {}).get("command") or []
        sleep = float(cmd[-1]) if cmd and cmd[0].endswith("sleep") else (pre.get("sleep") or {}).get("seconds", 0)
    return args, port, drain, grace, sleep


def check_objects(source, objs, flags, routes, ck):
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    server_ports = {}
    for o in objs:
        spec = pod_specs(o)
        if spec is None:
            continue
        name = f"{source}: {o['kind']}/{o['metadata']['name']}"
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            where = f"{name} container {c['name']}"
            ck.expect(c.get("image") == IMAGE or (c.get("image") in OTHER_IMAGES and c in (spec.get("initContainers") or [])),
                      where, f"image {c.get('image')!r} is not {IMAGE}")
            check_container_security(where, c, spec.get("securityContext"), ck)
        c = server_container(spec)
        args, port, drain, grace, sleep = check_server_container(name, c, spec, flags, routes, ck)
        server_ports[name] = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        if o["kind"] == "Deployment":
            ck.expect(c.get("lifecycle", {}).get("preStop") is not None, name, "no preStop hook")
            ck.expect(grace >= drain + sleep, name,
                      f"terminationGracePeriodSeconds {grace} < preStop {sleep} s + --drain-timeout {drain} s")
            ck.expect(bool(spec.get("topologySpreadConstraints")), name, "no topologySpreadConstraints")
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            ck.expect("/tmp" in mounts, name, "no writable /tmp (emptyDir) for a read-only root")
    names = {n for ports in server_ports.values() for n in ports}
    for svc in by_kind.get("Service", []):
        for p in svc["spec"]["ports"]:
            ck.expect(p.get("targetPort") in names | {v for ps in server_ports.values() for v in ps.values()},
                      f"{source}: Service/{svc['metadata']['name']}", f"targetPort {p.get('targetPort')!r} is no container port")
    svc_ports = {p.get("name") for s in by_kind.get("Service", []) for p in s["spec"]["ports"]}
    for sm in by_kind.get("ServiceMonitor", []):
        for e in sm["spec"]["endpoints"]:
            ck.expect(e.get("port") in svc_ports, f"{source}: ServiceMonitor", f"port {e.get('port')!r} not a Service port")
            ck.expect(e.get("path", "/metrics") == "/metrics", f"{source}: ServiceMonitor", "path is not /metrics")
    for np in by_kind.get("NetworkPolicy", []):
        for rule in np["spec"].get("ingress") or []:
            for p in rule.get("ports") or []:
                ck.expect(p.get("port") in names, f"{source}: NetworkPolicy", f"port {p.get('port')!r} is no container port")
    if by_kind.get("Deployment"):
        scalers = by_kind.get("HorizontalPodAutoscaler", []) + by_kind.get("ScaledObject", [])
        ck.expect(len(scalers) == 1, source, f"expected one autoscaler (HPA or ScaledObject), got {len(scalers)}")


def autoscaler_metrics(objs):
    """Metric names the HPA, the ScaledObject and the adapter rule rely on."""
    import yaml
    names = set()
    for o in objs:
        if o["kind"] == "HorizontalPodAutoscaler":
            for m in o["spec"].get("metrics", []):
                if m["type"] == "Pods":
                    names.add(m["pods"]["metric"]["name"])
        elif o["kind"] == "ScaledObject":
            for t in o["spec"]["triggers"]:
                if t["type"] == "prometheus":
                    names.update(re.findall(r"\b(cvdeploy_[a-z_]+)", t["metadata"]["query"]))
        elif o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {}):
            for rule in yaml.safe_load(o["data"]["config.yaml"]).get("rules", []):
                names.update(re.findall(r"\b(cvdeploy_[a-z_]+)", rule["seriesQuery"]))
    return names


def secure_args(cvdeploy, deployment_args, objs, repo, ck):
    """overlays/secure run locally: a self-signed certificate, a keys file with one viewer key
    (what the ServiceMonitor's Secret holds) and the overlay's own policy.json (0600)."""
    d = Path(repo + ".secure")  # beside the repository (a directory in it would be a model)
    d.mkdir(mode=0o700)
    run = lambda *a: subprocess.run([cvdeploy, *a], capture_output=True, text=True, timeout=60)
    out = run("tls", "selfsigned", "--out", str(d / "tls"))
    ck.expect(out.returncode == 0, "secure", f"tls selfsigned failed: {out.stderr.strip()}")
    out = run("keys", "create", "--name", "prometheus", "--role", "viewer", "--keys-file", str(d / "keys.json"))
    ck.expect(out.returncode == 0, "secure", f"keys create failed: {out.stderr.strip()}")
    token = out.stdout.strip()
    policies = [cm["data"]["policy.json"] for cm in objs
                if cm["kind"] == "ConfigMap" and "policy.json" in (cm.get("data") or {})]
    ck.expect(len(policies) == 1, "secure", "no ConfigMap with policy.json for --auth-policy")
    (d / "policy.json").write_text(policies[0] if policies else "{}")
    os.chmod(d / "policy.json", 0o600)
    extra = [f"--tls-cert={d}/tls/server.pem", f"--tls-key={d}/tls/server.key",
             f"--keys-file={d}/keys.json", f"--auth-policy={d}/policy.json"]
    wanted = {a.split("=", 1)[0] for a in extra}
    given = {a.split("=", 1)[0] for a in deployment_args}
    ck.expect(wanted <= given, "secure", f"Deployment args lack {sorted(wanted - given)}")
    return extra, str(d / "tls" / "ca.pem"), token


def live_check_runtime(cvdeploy, source, objs, ck):
    """A KServe runtime's own args, with /mnt/models a directory holding model.onnx (what the
    storage initializer leaves) and {{.Name}} the InferenceService's name: the model must be
    served under that name."""
    for rt in (o for o in objs if o["kind"] in ("ClusterServingRuntime", "ServingRuntime")):
        c = server_container(rt["spec"])
        if any(p not in c or "httpGet" not in c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe")):
            continue  # reported by check_server_container
        with tempfile.TemporaryDirectory() as mnt:
            shutil.copy(SAMPLE_MODEL, f"{mnt}/model.onnx")
            args = [a.replace("/mnt/models", mnt).replace("{{.Name}}", "isvc-name") for a in c["args"]
                    if a.split("=", 1)[0] not in ("--host", "--port", "--access-log")]
            args += ["--host=127.0.0.1", "--port=0", "--access-log=/dev/null"]
            where = f"{source}: {rt['kind']}/{rt['metadata']['name']} live server"
            with serve_process.Server(cvdeploy, args) as srv:
                if not ck.expect(srv.wait_ready(60), where, f"not ready: {srv.log_tail()}"):
                    continue
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    status, _ = srv.get(c[probe]["httpGet"]["path"])
                    ck.expect(status == 200, where, f"{probe} answered {status}")
                status, _ = srv.get("/v2/models/isvc-name/ready")
                ck.expect(status == 200, where, f"model not served as {{{{.Name}}}}: ready answered {status}")


def live_check(cvdeploy, source, objs, metric_names, ck):
    """Runs the Deployment's server args on 127.0.0.1 with its ConfigMap config.json files."""
    deps = [o for o in objs if o["kind"] == "Deployment"]
    if not deps or not SAMPLE_MODEL.exists():
        return
    spec = deps[0]["spec"]["template"]["spec"]
    c = server_container(spec)
    if any(p not in c or "httpGet" not in c[p] for p in ("startupProbe", "livenessProbe", "readinessProbe")):
        return  # reported by check_server_container
    drop = ("--host", "--port", "--model-repository", "--tls-cert", "--tls-key", "--keys-file",
            "--auth-policy", "--trusted-keys", "--require-signed", "--access-log")
    args = [a for a in c["args"] if a.split("=", 1)[0] not in drop]
    with tempfile.TemporaryDirectory() as repo:
        for cm in (o for o in objs if o["kind"] == "ConfigMap"):
            for key, value in (cm.get("data") or {}).items():
                if key.endswith(".config.json"):
                    model = key[: -len(".config.json")]
                    os.makedirs(f"{repo}/{model}/1")
                    shutil.copy(SAMPLE_MODEL, f"{repo}/{model}/1/model.onnx")
                    Path(f"{repo}/{model}/config.json").write_text(value)
        args += ["--host=127.0.0.1", "--port=0", f"--model-repository={repo}", "--access-log=/dev/null"]
        cafile, token = None, None
        if any(a.startswith("--tls-cert=") for a in c["args"]):
            extra, cafile, token = secure_args(cvdeploy, c["args"], objs, repo, ck)
            args += extra
        where = f"{source}: live server"
        try:
            serve_and_probe(cvdeploy, args, cafile, token, c, metric_names, where, ck)
        finally:
            shutil.rmtree(repo + ".secure", ignore_errors=True)


def serve_and_probe(cvdeploy, args, cafile, token, c, metric_names, where, ck):
    """Starts the server, GETs the probe paths and /metrics (with the key when secure)."""
    with serve_process.Server(cvdeploy, args, cafile=cafile) as srv:
        if not ck.expect(srv.wait_ready(60), where, f"not ready: {srv.log_tail()}"):
            return
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            path = c[probe]["httpGet"]["path"]
            status, _ = srv.get(path)
            ck.expect(status == 200, where, f"{probe} GET {path} answered {status}")
        if token:
            status, _ = srv.get("/metrics")
            ck.expect(status == 401, where, f"GET /metrics without a key answered {status}, not 401")
        status, metrics = srv.get("/metrics", token=token)
        ck.expect(status == 200, where, f"GET /metrics answered {status}")
        exposed = set(re.findall(r"^# TYPE (\S+)", metrics, re.M))
        for name in sorted(metric_names):
            ck.expect(name in exposed, where, f"autoscaling metric {name} is not in /metrics")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", nargs="*", type=Path, help="kustomize directories (default: all)")
    ap.add_argument("--cvdeploy", help="cvdeploy binary: flags from --help and the live check")
    ap.add_argument("--no-lint", action="store_true", help="skip yamllint")
    a = ap.parse_args()
    missing = [t for t in ("kubectl", "node", "yamllint") if not shutil.which(t)]
    try:
        import yaml  # noqa: F401  (Debian python3-yaml: run with /usr/bin/python3)
    except ImportError:
        missing.append("python3 yaml module")
    if missing or not (NODE_MODULES / "kubernetes-models").is_dir():
        print(f"SKIP: missing {missing or [str(NODE_MODULES)]}; run scripts/setup-k8s.sh")
        return 77
    ck = Checker()
    dirs = a.dirs or default_dirs()
    flags, routes = serve_flags(a.cvdeploy), source_routes()
    ck.expect(routes, "server", "no /v2/health routes found in docs/server.md")
    items, rendered = [], {}
    for d in dirs:
        source = os.path.relpath(d, ROOT)
        objs, err = render(d)
        if not ck.expect(objs is not None, source, f"kubectl kustomize failed: {err}"):
            continue
        rendered[source] = objs
        items += [(source, o) for o in objs]
        check_objects(source, objs, flags, routes, ck)
    validated = validate_schemas(items, ck) if items else 0
    if not a.no_lint:
        yamllint(a.dirs or [ROOT / "deploy", ROOT / "tests" / "deploy" / "prometheus"], ck)
    metric_names = set()
    for objs in rendered.values():
        metric_names |= autoscaler_metrics(objs)
    if a.cvdeploy:
        for source, objs in rendered.items():
            live_check(a.cvdeploy, source, objs, metric_names, ck)
            live_check_runtime(a.cvdeploy, source, objs, ck)
    print(f"{len(rendered)} directories rendered, {validated} objects validated, "
          f"autoscaling metrics {sorted(metric_names)}, {len(ck.failures)} failure(s)")
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
