#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Measures the training losses against each other on one pruned student.

The loss table of docs/optimization.md: distillation with each class and box loss,
distillation with the labels mixed in, and fine-tuning on the labels alone.

    bench/distill_loss_bench.py [--cvdeploy build/cvdeploy] [--assets DIR] [--out DIR]
                                [--ratio 0.1] [--epochs N] [--imgsz N] [--batch N] [--lr X]
                                [--label-weight W] [--variants NAME,...] [--smoke]

The data are train_bench.py's: coco128 split deterministically into 60 training and 26
validation images; pruning (`--method activation`) and every training run see only the
training part, and every mAP50-95 is on the validation part (`--val`, every epoch; the best
epoch is reported and kept). Every variant starts from the same pruned model with the same
seed, so the rows differ only in the loss. Variants (all by default):
  bce+kl    distill --cls-loss bce --box-loss kl (the default)
  kl+kl     distill --cls-loss kl  (same gradient as bce: a check that it trains the same)
  bce+l1    distill --box-loss l1  (L1 on the decoded side distances)
  bce+iou   distill --box-loss iou (1 - CIoU of the decoded boxes)
  labels    distill --data TRAIN --label-weight W (teacher + Ultralytics detection loss)
  finetune  finetune --data TRAIN (labels only, no teacher)
--smoke: one optimizer step on two images at imgsz 320 per variant (CTest: every command and
the script keep working; its figures mean nothing).
Exit status: 0 when every run succeeded.
"""
import os
import sys
import tempfile

import benchlib
from benchlib import run
from train_bench import TRAIN_COUNT, split_coco128, train, validate

VARIANTS = {
    "bce+kl": ("distill", ["--cls-loss", "bce", "--box-loss", "kl"]),
    "kl+kl": ("distill", ["--cls-loss", "kl", "--box-loss", "kl"]),
    "bce+l1": ("distill", ["--cls-loss", "bce", "--box-loss", "l1"]),
    "bce+iou": ("distill", ["--cls-loss", "bce", "--box-loss", "iou"]),
    "labels": ("distill", []),  # --label-weight from the command line
    "finetune": ("finetune", []),
}


def variant_args(name, student, teacher, split, out_model, label_weight):
    command, extra = VARIANTS[name]
    train_dir = split["train"]
    if command == "finetune":
        return command, ["--model", student, "--data", train_dir, "--out", out_model] + extra
    args = ["--student", student, "--teacher", teacher, "--out", out_model]
    if name == "labels":
        args += ["--data", train_dir, "--label-weight", f"{label_weight:g}"]
    else:
        args += ["--images", os.path.join(train_dir, "images")]
    return command, args + extra


def main():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--out", default=None, help="keep models, reports and Markdown here")
    ap.add_argument("--ratio", type=float, default=0.1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=None,
                    help="every variant's --lr (default: each command's own, distill 1e-4, "
                         "finetune 1e-5)")
    ap.add_argument("--label-weight", type=float, default=0.01,
                    help="the labels variant's --label-weight (detection loss weight)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")
    if args.smoke:
        args.epochs, args.batch, args.imgsz = 1, 2, 320
    out = args.out or tempfile.mkdtemp(prefix="cvdeploy_losses_")
    os.makedirs(out, exist_ok=True)
    cli = args.cvdeploy
    split, counts = split_coco128(os.path.join(args.assets, "datasets", "coco128"), out)
    teacher = os.path.join(args.assets, "models", "yolov8n-dq.onnx")
    base_map = validate(cli, teacher, split["val"], out, "teacher")
    student = os.path.join(out, f"yolov8n-dq_p{args.ratio:g}.onnx")
    run([cli, "prune", "--model", teacher, "--ratio", f"{args.ratio:g}", "--method", "activation",
         "--calib", os.path.join(split["train"], "images"), "--calib-size",
         "2" if args.smoke else str(TRAIN_COUNT), "--out", student])
    common = ["--val", split["val"], "--epochs", str(args.epochs), "--imgsz", str(args.imgsz),
              "--batch", str(args.batch), "--seed", "0"]
    if args.lr is not None:
        common += ["--lr", f"{args.lr:g}"]
    if args.smoke:
        common += ["--max-steps", "1", "--max-images", "2"]
    rows = []
    for name in variants:
        command, vargs = variant_args(name, student, teacher, split,
                                      os.path.join(out, f"{name.replace('+', '_')}.onnx"),
                                      args.label_weight)
        rep = train(cli, command, vargs + common, out, name.replace("+", "_"))
        rows.append((name, rep))
    commit = benchlib.git_commit()
    lines = [f"commit `{commit}`, {benchlib.cpu_model()}, {os.cpu_count()} logical cores; "
             f"yolov8n-dq pruned at {args.ratio:g} (activation ranking on the training part); "
             f"coco128 split {counts['train']} train / {counts['val']} validation; imgsz "
             f"{args.imgsz}, batch {args.batch}, SGD lr "
             f"{'each command default' if args.lr is None else format(args.lr, 'g')}, "
             f"{args.epochs} epochs, seed 0; "
             f"teacher (original) mAP50-95 {base_map:.4f} on the validation part", "",
             "| variant | command and loss | mAP50-95 before | best (epoch) | % of original "
             "| final loss | training time (s) | steps |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, rep in rows:
        before = rep.get("val_map50_95_before", 0.0)
        best = rep.get("val_map50_95_best", 0.0)
        command, extra = VARIANTS[name]
        labelled = ["--data TRAIN", f"--label-weight {args.label_weight:g}"]
        shown = " ".join([command] + (labelled if name == "labels" else []) + extra)
        lines.append(f"| {name} | `{shown}` | {before:.4f} | {best:.4f} ({rep['best_epoch']}) "
                     f"| {100 * best / max(base_map, 1e-9):.1f}% | {rep['final_loss']:.4f} "
                     f"| {rep['seconds']:.0f} | {rep['steps']} |")
    lines += ["", "Curves (epoch: validation mAP50-95):", ""]
    for name, rep in rows:
        curve = ", ".join(f"{e.get('val_map50_95', 0):.4f}" for e in rep["epochs"])
        lines.append(f"- {name}: {curve}")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(out, "distill_losses.md"), "w") as f:
        f.write(md)
    print("\n" + md + f"\noutputs in {out}", flush=True)
    # run() already exits with the command's output when a command fails; a run that took no
    # optimizer step is a failure too.
    for name, rep in rows:
        if rep["steps"] < 1:
            print(f"{name}: no optimizer step was taken", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
