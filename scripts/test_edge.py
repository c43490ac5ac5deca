#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the aarch64 edge build against the x86 build (make test-edge).

Runs `cvdeploy predict` on bus.jpg with yolo11n-dq twice: the x86 binary natively and the
aarch64 binary under qemu-user (QEMU_LD_PREFIX = the arm64 sysroot). Passes when both find
the same classes and every x86 box has an unused arm64 box of the same class with IoU >= 0.99
(and none is left over). Also reports what an edge deployment costs: the stripped binary, the
runtime (the shared libraries it loads, resolved in the sysroot and the ONNX Runtime arm64
directory), the resident memory of one prediction (qemu's peak RSS from /usr/bin/time -v: an
upper bound, since it includes the emulator and its translated code) and the time of one
prediction under qemu. Exit 0 on pass, 1 on a mismatch, 2 on a usage or setup error. `--self-test` checks the
comparison itself on made-up detections (no binaries needed).

`--bundle ARCHIVE` tests the archive of scripts/edge-bundle.sh instead of a build-tree binary:
it is unpacked into a temporary directory, its binary must carry the RUNPATH $ORIGIN/../lib
and load ONNX Runtime from the bundle's lib/ (the sysroot has none), and its sizes are reported.
"""
import argparse
import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

MIN_IOU = 0.99


def fail_setup(message):
    print(f"test_edge: error: {message}", file=sys.stderr)
    sys.exit(2)


def iou(a, b):
    ix = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    iy = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = ix * iy
    union = ((a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) +
             (b["x2"] - b["x1"]) * (b["y2"] - b["y1"]) - inter)
    return inter / union if union > 0 else 0.0


def compare(reference, candidate, min_iou=MIN_IOU):
    """Returns a list of problems (empty: equal). Greedy: each reference box, most confident
    first, takes the best unused candidate box of its class."""
    problems = []
    ref_classes = sorted({d["class_id"] for d in reference})
    cand_classes = sorted({d["class_id"] for d in candidate})
    if ref_classes != cand_classes:
        problems.append(f"classes differ: x86 {ref_classes}, aarch64 {cand_classes}")
    if len(reference) != len(candidate):
        problems.append(f"detection count differs: x86 {len(reference)}, aarch64 {len(candidate)}")
    used = set()
    for ref in sorted(reference, key=lambda d: -d["confidence"]):
        best, best_iou = None, -1.0
        for i, cand in enumerate(candidate):
            if i in used or cand["class_id"] != ref["class_id"]:
                continue
            value = iou(ref["box"], cand["box"])
            if value > best_iou:
                best, best_iou = i, value
        if best is None:
            problems.append(f"no aarch64 box for x86 {ref['class_name']} {ref['box']}")
            continue
        used.add(best)
        if best_iou < min_iou:
            problems.append(f"{ref['class_name']} box IoU {best_iou:.4f} < {min_iou}: "
                            f"x86 {ref['box']}, aarch64 {candidate[best]['box']}")
    return problems


def detections(stdout, what):
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if len(lines) != 1:
        fail_setup(f"{what}: expected one JSON line from predict, got {len(lines)}")
    return json.loads(lines[0])


def needed(readelf, path):
    out = subprocess.run([readelf, "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def runtime_libraries(readelf, binary, search_dirs):
    """The shared libraries `binary` loads (transitively), each resolved in search_dirs."""
    found, missing, queue = {}, [], [binary]
    while queue:
        for name in needed(readelf, queue.pop()):
            if name in found or name in missing:
                continue
            path = next((os.path.join(d, name) for d in search_dirs
                         if os.path.exists(os.path.join(d, name))), None)
            if path is None:
                missing.append(name)
                continue
            found[name] = os.path.realpath(path)
            queue.append(found[name])
    return found, missing


def unpack_bundle(archive, into):
    """Unpacks the edge bundle; returns (binary, lib directory, problems, report entries)."""
    with tarfile.open(archive) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(into, **safe)
    tops = os.listdir(into)
    if len(tops) != 1:
        fail_setup(f"{archive}: expected one top directory, got {tops}")
    top = os.path.join(into, tops[0])
    binary, lib = os.path.join(top, "bin", "cvdeploy"), os.path.join(top, "lib")
    if not os.access(binary, os.X_OK):
        fail_setup(f"{archive}: no executable bin/cvdeploy")
    problems = []
    readelf = shutil.which("aarch64-linux-gnu-readelf") or "readelf"
    dyn = subprocess.run([readelf, "-d", binary], capture_output=True, text=True).stdout
    runpath = re.search(r"\(RUNPATH\)\s+Library runpath: \[([^\]]+)\]", dyn)
    if not runpath or runpath.group(1) != "$ORIGIN/../lib":
        problems.append(f"bundle binary RUNPATH is {runpath.group(1) if runpath else None}, "
                        "expected $ORIGIN/../lib")
    if not os.path.exists(os.path.join(lib, "libonnxruntime.so.1")):
        problems.append("bundle has no lib/libonnxruntime.so.1")
    unpacked = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(top)
                   for f in files if not os.path.islink(os.path.join(d, f)))
    report = {"bundle_bytes": os.path.getsize(archive), "bundle_unpacked_bytes": unpacked}
    mib = 1024 * 1024
    print(f"edge bundle {os.path.basename(archive)}: {report['bundle_bytes'] / mib:.1f} MiB, "
          f"unpacked {unpacked / mib:.1f} MiB")
    return binary, lib, problems, report


def self_test():
    """The comparison must be able to fail: a shifted box, another class, a missing or an extra
    box each give a problem; the same detections (in another order) give none."""
    def det(cls, x1, y1, x2, y2, conf=0.9):
        return {"class_id": cls, "class_name": str(cls), "confidence": conf,
                "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}}
    ref = [det(0, 10, 10, 110, 210, 0.9), det(5, 0, 0, 800, 700, 0.8), det(0, 300, 10, 400, 210, 0.7)]
    cases = {
        "identical, reordered": (list(reversed(ref)), False),
        "tiny drift (IoU > 0.99)": ([det(0, 10.1, 10, 110, 210), ref[1], ref[2]], False),
        "shifted box (IoU < 0.99)": ([det(0, 14, 10, 114, 210), ref[1], ref[2]], True),
        "other class": ([det(2, 10, 10, 110, 210), ref[1], ref[2]], True),
        "missing box": (ref[:2], True),
        "extra box": (ref + [det(0, 500, 500, 600, 600)], True),
        "two refs, one candidate box of the class": ([ref[0], ref[1], ref[0]], True),
    }
    failures = 0
    for name, (candidate, should_fail) in cases.items():
        problems = compare(ref, candidate)
        if bool(problems) != should_fail:
            failures += 1
            print(f"test_edge self-test: FAIL: {name}: problems={problems}")
    print(f"test_edge self-test: {len(cases) - failures}/{len(cases)} cases pass")
    return 1 if failures else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--edge", help="aarch64 cvdeploy binary")
    target.add_argument("--bundle", help="edge archive of scripts/edge-bundle.sh (tar.gz)")
    parser.add_argument("--x86", required=True, help="x86 cvdeploy binary (the reference)")
    parser.add_argument("--qemu", required=True, help="qemu-aarch64 (static, trixie)")
    parser.add_argument("--sysroot", required=True, help="arm64 sysroot (QEMU_LD_PREFIX)")
    parser.add_argument("--assets", required=True, help="assets directory (models/, images/)")
    parser.add_argument("--ort-lib", help="ONNX Runtime arm64 lib directory "
                        "(default: the RUNPATH of --edge)")
    parser.add_argument("--model", default="yolo11n-dq")
    parser.add_argument("--image", default="bus.jpg")
    parser.add_argument("--report", help="write the measurements as JSON to FILE")
    args = parser.parse_args()

    bundle_problems, bundle_report = [], {}
    if args.bundle:
        unpacked = tempfile.mkdtemp(prefix="cvdeploy-edge-bundle-")
        atexit.register(shutil.rmtree, unpacked, True)
        args.edge, args.ort_lib, bundle_problems, bundle_report = unpack_bundle(args.bundle, unpacked)
    for path in (args.edge, args.x86, args.qemu):
        if not os.access(path, os.X_OK):
            fail_setup(f"{path}: not an executable (make edge / make build / setup-edge.sh)")
    model = os.path.join(args.assets, "models", args.model + ".onnx")
    image = os.path.join(args.assets, "images", args.image)
    predict = ["predict", "--model", model, "--source", image, "--json", "-"]

    ref = subprocess.run([args.x86] + predict, capture_output=True, text=True)
    if ref.returncode != 0:
        fail_setup(f"x86 predict failed ({ref.returncode}): {ref.stderr.strip()}")
    reference = detections(ref.stdout, "x86")

    env = dict(os.environ, QEMU_LD_PREFIX=os.path.realpath(args.sysroot))
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        start = time.monotonic()
        edge = subprocess.run(["/usr/bin/time", "-v", "-o", timing.name, args.qemu, args.edge] +
                              predict, capture_output=True, text=True, env=env)
        wall_s = time.monotonic() - start
        time_report = timing.read()
    if edge.returncode != 0:
        print(f"test_edge: FAIL: aarch64 predict under qemu exited {edge.returncode}: "
              f"{edge.stderr.strip()[-2000:]}")
        return 1
    candidate = detections(edge.stdout, "aarch64")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_report)

    ort_lib = args.ort_lib
    readelf = shutil.which("aarch64-linux-gnu-readelf") or "readelf"
    if not ort_lib:
        dyn = subprocess.run([readelf, "-d", args.edge], capture_output=True, text=True).stdout
        runpath = re.search(r"\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[([^\]]+)\]", dyn)
        ort_lib = runpath.group(1).split(":")[0] if runpath else ""
    dirs = [d for d in (ort_lib,) if d] + [
        os.path.join(args.sysroot, p) for p in
        ("usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib", "lib")]
    libs, missing = runtime_libraries(readelf, args.edge, dirs)
    with tempfile.TemporaryDirectory() as tmp:
        stripped = os.path.join(tmp, "cvdeploy")
        strip = shutil.which("aarch64-linux-gnu-strip") or "strip"
        subprocess.run([strip, "-o", stripped, args.edge], check=True)
        stripped_bytes = os.path.getsize(stripped)
    runtime_bytes = sum(os.path.getsize(p) for p in set(libs.values()))
    ort_bytes = sum(os.path.getsize(p) for n, p in libs.items() if n.startswith("libonnxruntime"))
    # The model tools' libraries (ONNX graph classes, protobuf): what a build without them
    # could drop at most, if the core did not parse models with them too.
    onnx_pb_bytes = sum(os.path.getsize(p) for n, p in libs.items()
                        if n.startswith(("libonnx.", "libonnx_proto", "libprotobuf")))

    report = dict(bundle_report, **{
        "binary_bytes": os.path.getsize(args.edge),
        "binary_stripped_bytes": stripped_bytes,
        "runtime_libraries": len(libs),
        "runtime_bytes": runtime_bytes,
        "runtime_onnxruntime_bytes": ort_bytes,
        "runtime_onnx_protobuf_bytes": onnx_pb_bytes,
        "runtime_unresolved": missing,
        "qemu_peak_rss_kib_upper_bound": int(rss.group(1)) if rss else None,
        "qemu_predict_wall_s": round(wall_s, 2),
        "qemu_speed_ms": candidate.get("speed_ms"),
        "x86_speed_ms": reference.get("speed_ms"),
        "detections": len(candidate["detections"]),
    })
    mib = 1024 * 1024
    print(f"edge binary: {report['binary_bytes'] / mib:.1f} MiB, stripped "
          f"{stripped_bytes / mib:.1f} MiB")
    print(f"edge runtime: {len(libs)} shared libraries, {runtime_bytes / mib:.1f} MiB "
          f"(ONNX Runtime {ort_bytes / mib:.1f} MiB, "
          f"ONNX + protobuf {onnx_pb_bytes / mib:.1f} MiB)" +
          (f"; unresolved: {', '.join(missing)}" if missing else ""))
    if rss:
        print(f"one prediction under qemu: peak RSS {int(rss.group(1)) / 1024:.0f} MiB "
              "(qemu's, an upper bound of the target's), "
              f"wall {wall_s:.1f} s, speed_ms {candidate.get('speed_ms')}")
    if args.report:
        with open(args.report, "w") as out:
            json.dump(report, out, indent=2)

    problems = bundle_problems + compare(reference["detections"], candidate["detections"])
    if missing:
        problems.append(f"runtime libraries not found in the sysroot: {', '.join(missing)}")
    for problem in problems:
        print(f"test_edge: FAIL: {problem}")
    if problems:
        return 1
    print(f"test_edge: PASS: {len(reference['detections'])} detections, same classes, "
          f"IoU >= {MIN_IOU} per box")
    return 0


if __name__ == "__main__":
    sys.exit(main())
