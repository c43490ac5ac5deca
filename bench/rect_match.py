#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Rect vs square detections on one dynamic-size model: how many match, and why the others do not.

    bench/rect_match.py --model DYNAMIC.onnx [--source DIR] [--conf 0.25] [--cvdeploy ...]

Runs `cvdeploy predict` twice over the same images on the same model (converted with
`cvdeploy convert --dynamic-shape`): with the rect letterbox (default) and with `--no-rect`
(the full square), both at a low confidence (--floor, 0.05) so that what lies just under the
threshold on one side is visible. NMS keeps a candidate only against higher-scored ones, so the
detections at or above --conf are the same as a run at --conf would give.

A detection of one side at or above --conf is matched when the other side has one of the same
class at IoU >= 0.9 at or above --conf (the issue's criterion, counted over both sides). Every
unmatched one is put into the first bucket that fits:
  threshold  the other side has it (same class, IoU >= 0.9) but under --conf: a score flip
  moved      the other side has it above --conf at 0.5 <= IoU < 0.9: the box moved
  class      the other side has a box at IoU >= 0.9 of another class
  weak       the other side has it only under --conf and at 0.5 <= IoU < 0.9
  alone      nothing on the other side at IoU >= 0.5
Also printed: the match rate over detections at or above 0.5, and per bucket the confidence
range, which shows whether the misses are detections near the threshold.
"""
import json
import os
import sys

import benchlib
from benchlib import run


def iou(a, b):
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    ih = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def predictions(cli, model, source, floor, flag):
    proc = run([cli, "predict", "--model", model, "--source", source, "--conf", str(floor),
                "--json", "-", "--quiet"] + ([flag] if flag else []))
    out = {}
    for line in proc.stdout.splitlines():
        if not line.strip():
            continue
        doc = json.loads(line)
        out[doc["source"]] = [(d["class_id"], d["confidence"],
                               (d["box"]["x1"], d["box"]["y1"], d["box"]["x2"], d["box"]["y2"]))
                              for d in doc["detections"]]
    return out


def classify(det, other, conf):
    cls, _, box = det
    best = {"same_hi": 0.0, "same_lo": 0.0, "other_cls": 0.0}
    for c, s, b in other:
        v = iou(box, b)
        if c == cls and s >= conf:
            best["same_hi"] = max(best["same_hi"], v)
        elif c == cls:
            best["same_lo"] = max(best["same_lo"], v)
        else:
            best["other_cls"] = max(best["other_cls"], v)
    if best["same_hi"] >= 0.9:
        return "matched"
    if best["same_lo"] >= 0.9:
        return "threshold"
    if best["same_hi"] >= 0.5:
        return "moved"
    if best["other_cls"] >= 0.9:
        return "class"
    if best["same_lo"] >= 0.5:
        return "weak"
    return "alone"


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--model", required=True, help="a model with dynamic spatial axes")
    ap.add_argument("--source", default=None, help="images (default: the assets' coco128)")
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--square-model", default=None,
                    help="the fixed-shape original of --model: the square side runs it (its "
                         "outputs at the export size equal the converted model's, as `convert` "
                         "verifies) and neither side passes --rect/--no-rect")
    args = ap.parse_args()
    source = args.source or os.path.join(args.assets, "datasets", "coco128", "images")
    flags = (None, None) if args.square_model else ("--rect", "--no-rect")
    rect = predictions(args.cvdeploy, args.model, source, args.floor, flags[0])
    square = predictions(args.cvdeploy, args.square_model or args.model, source, args.floor,
                         flags[1])
    buckets = {}
    strong = [0, 0]
    for name in sorted(square):
        for side, mine, theirs in (("square", square[name], rect.get(name, [])),
                                   ("rect", rect.get(name, []), square[name])):
            for det in mine:
                if det[1] < args.conf:
                    continue
                kind = classify(det, theirs, args.conf)
                buckets.setdefault(kind, []).append((det[1], side, name))
                if det[1] >= 0.5:
                    strong[0] += 1
                    strong[1] += kind == "matched"
    total = sum(len(v) for v in buckets.values())
    matched = len(buckets.get("matched", []))
    print(f"model {args.model}, {len(square)} images, detections at conf >= {args.conf} "
          f"(both sides): {total}")
    print(f"matched (same class, IoU >= 0.9): {matched} = {100 * matched / max(1, total):.1f}%")
    print(f"matched among conf >= 0.5: {strong[1]} of {strong[0]} = "
          f"{100 * strong[1] / max(1, strong[0]):.1f}%")
    for kind in ("threshold", "moved", "class", "weak", "alone"):
        items = buckets.get(kind, [])
        if not items:
            continue
        confs = sorted(c for c, _, _ in items)
        print(f"  {kind:9s} {len(items):4d}  conf {confs[0]:.2f}-{confs[-1]:.2f}, median "
              f"{confs[len(confs) // 2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
