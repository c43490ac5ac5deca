#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the rendered Deployment of a kustomize overlay as a local pod with `podman kube play`,
# waits until it is ready, predicts bus.jpg through the published port, and tears it down.
# Not in CTest (it needs the image from `make image`); run it after building the image:
#
#   scripts/kube_play_test.sh [--overlay DIR] [--image TAG] [--port N] [--cvdeploy BIN] [--dry-run]
#
#   --overlay   kustomize directory (default deploy/kubernetes/overlays/cpu; overlays/secure needs
#               its Secrets, which are not in the repository, and model-packages a model image)
#   --image     image to run instead of localhost/cvdeploy:latest (default: that tag)
#   --port      host port, published on 127.0.0.1 only (default 18080)
#   --cvdeploy  local build: its `predict` of bus.jpg must find the same classes as the pod
#   --dry-run   print the pod YAML that would be played, and stop
#
# What the script changes in the rendered objects, and why: only the Deployment and its
# ConfigMaps are played (podman has no Services, HPAs, NetworkPolicies, ...); the model store
# (a PVC in the cluster) becomes a hostPath of a temporary repository holding the sample model;
# the container port gets hostIP 127.0.0.1 and hostPort --port; restartPolicy becomes OnFailure
# (see below). The securityContext, init
# containers, probes, args, emptyDirs and read-only root filesystem are played as rendered.
# podman needs the settings of GUIDE §6 (runc, cgroupfs, ulimits): a containers.conf with them
# is written to a temporary file unless CONTAINERS_CONF is already set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OVERLAY="$ROOT/deploy/kubernetes/overlays/cpu"
IMAGE="localhost/cvdeploy:latest"
PORT=18080
CVDEPLOY=""
DRY_RUN=0
ASSETS="$ROOT/../shared/assets"
MODEL="$ASSETS/models/yolo11n-dq.onnx"
BUS="$ASSETS/images/bus.jpg"
log() { echo "kube_play_test: $*" >&2; }
die() { echo "kube_play_test: error: $*" >&2; exit 1; }

while (($#)); do
  case "$1" in
    --overlay) OVERLAY="$(cd "$2" && pwd)"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --port) PORT="$2"; shift 2 ;;
    --cvdeploy) CVDEPLOY="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) sed -n '3,24p' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
for tool in kubectl /usr/bin/python3 curl; do
  command -v "$tool" >/dev/null || die "$tool not found (scripts/setup-deps.sh)"
done
{ [ -f "$MODEL" ] && [ -f "$BUS" ]; } || die "sample model or bus.jpg missing under $ASSETS"

WORK="$(mktemp -d)"
PLAYED=""
cleanup() {
  if [ -n "$PLAYED" ]; then
    log "tearing down"
    podman kube down "$PLAYED" >/dev/null 2>&1 || log "podman kube down failed (remove the pod by hand)"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A repository for the model store: yolo11n/1/model.onnx, readable by uid 10001.
mkdir -p "$WORK/repo/yolo11n/1"
cp "$MODEL" "$WORK/repo/yolo11n/1/model.onnx"
chmod -R a+rX "$WORK" "$WORK/repo"

kubectl kustomize "$OVERLAY" >"$WORK/rendered.yaml"
/usr/bin/python3 - "$WORK/rendered.yaml" "$WORK/pod.yaml" "$IMAGE" "$PORT" "$WORK/repo" <<'PY'
import sys
import yaml

src, dst, image, port, repo = sys.argv[1:]
objs = [o for o in yaml.safe_load_all(open(src)) if o]
deps = [o for o in objs if o["kind"] == "Deployment"]
if len(deps) != 1:
    sys.exit(f"expected one Deployment in the overlay, found {len(deps)}")
dep = deps[0]
spec = dep["spec"]["template"]["spec"]
for c in spec.get("initContainers", []) + spec["containers"]:
    if c["image"] == "localhost/cvdeploy:latest":
        c["image"] = image
server = [c for c in spec["containers"] if c["name"] == "cvdeploy"][0]
http = [p for p in server["ports"] if p.get("name") == "http"][0]
http["hostIP"] = "127.0.0.1"
http["hostPort"] = int(port)
# podman 4.3 applies the pod's restart policy to init containers too and re-runs them while
# it starts the pod; OnFailure keeps a finished init container finished.
spec["restartPolicy"] = "OnFailure"
for v in spec["volumes"]:
    if "persistentVolumeClaim" in v:
        del v["persistentVolumeClaim"]
        v["hostPath"] = {"path": repo, "type": "Directory"}
played = [o for o in objs if o["kind"] == "ConfigMap"] + [dep]
yaml.safe_dump_all(played, open(dst, "w"), sort_keys=False)
PY

if ((DRY_RUN)); then
  cat "$WORK/pod.yaml"
  exit 0
fi
command -v podman >/dev/null || die "podman not found"
if [ -z "${CONTAINERS_CONF:-}" ]; then
  printf '[containers]\ndefault_ulimits=["nofile=1024:1024","nproc=1024:1024"]\n[engine]\nruntime="runc"\ncgroup_manager="cgroupfs"\n' \
    >"$WORK/containers.conf"
  export CONTAINERS_CONF="$WORK/containers.conf"
fi
podman image exists "$IMAGE" || die "image $IMAGE not found (make image)"

log "playing $(basename "$OVERLAY") with $IMAGE on 127.0.0.1:$PORT"
cp "$WORK/pod.yaml" "$WORK/played.yaml"
PLAYED="$WORK/played.yaml"
podman kube play --replace "$PLAYED" >/dev/null

BASE="http://127.0.0.1:$PORT"
deadline=$((SECONDS + 180))
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/health/ready" || true)" = 200 ]; do
  if ((SECONDS > deadline)); then
    podman pod ps >&2 || true
    podman logs --tail 30 "$(podman ps -a --format '{{.Names}}' | grep -- '-cvdeploy$' | head -n1)" >&2 || true
    die "the pod did not become ready within 180 s"
  fi
  sleep 2
done
log "ready; live: $(curl -s "$BASE/v2/health/live")"

curl -sf -H 'Content-Type: image/jpeg' --data-binary "@$BUS" "$BASE/v1/models/yolo11n/predict" \
  >"$WORK/pod.json" || die "predict through the pod failed"
/usr/bin/python3 - "$WORK/pod.json" "$CVDEPLOY" "$MODEL" "$BUS" <<'PY'
import json
import subprocess
import sys

pod_json, cvdeploy, model, bus = sys.argv[1:]
pod = json.load(open(pod_json))
classes = sorted(d["class_name"] for d in pod["detections"])
print(f"kube_play_test: pod detections: {classes}", file=sys.stderr)
if "bus" not in classes or classes.count("person") < 3:
    sys.exit("kube_play_test: error: expected a bus and at least 3 persons in bus.jpg")
if cvdeploy:
    out = subprocess.run([cvdeploy, "predict", "--model", model, "--source", bus, "--json", "-"],
                         capture_output=True, text=True, check=True).stdout
    local = sorted(d["class_name"] for d in json.loads(out.splitlines()[0])["detections"])
    if local != classes:
        sys.exit(f"kube_play_test: error: the CLI found {local}, the pod {classes}")
    print("kube_play_test: same classes as the local CLI", file=sys.stderr)
PY
metrics="$(curl -s "$BASE/metrics")"
grep -q '^cvdeploy_pending_requests{' <<<"$metrics" || die "/metrics has no cvdeploy_pending_requests"
log "ok"
