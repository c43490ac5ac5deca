#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the seed corpus of every fuzz target under OUT/<target>/.

Each corpus is the committed hand-written seeds (tests/fuzz/seeds/<target>/) plus seeds
derived at run time from the sample assets ($CVDEPLOY_ASSETS: images, coco128, models) and
the tests' fixtures (tests/fixtures/kserve). Asset files are never committed; what is derived
from them is small (image prefixes, models without their weights, label files, metadata).
Python standard library only. A missing assets directory only loses the derived seeds.
"""
import argparse
import json
import os
import shutil
import struct
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "tests" / "fuzz" / "seeds"
FIXTURES = REPO / "tests" / "fixtures" / "kserve"


def put(out, target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# ---------------------------------------------------------------- protobuf (ONNX) helpers
def varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def encode_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(buf):
    """(field number, wire type, raw bytes of the whole field, payload) for each field."""
    i = 0
    while i < len(buf):
        start = i
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(buf, i)
            payload = None
        elif wire == 1:
            i += 8
            payload = None
        elif wire == 2:
            n, i = varint(buf, i)
            payload = buf[i:i + n]
            i += n
        elif wire == 5:
            i += 4
            payload = None
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, buf[start:i], payload


def length_delimited(number, payload):
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


def strip_onnx(model):
    """The model without initializers and with few nodes: what ParseModelInfo reads (graph
    inputs/outputs, opsets, metadata_props, node op types) in a few kilobytes."""
    out = bytearray()
    props = {}
    for number, wire, raw, payload in fields(model):
        if number == 7 and wire == 2:  # ModelProto.graph
            graph = bytearray()
            nodes = 0
            kept_ops = set()
            for gnum, gwire, graw, gpayload in fields(payload):
                if gnum == 5:  # initializer
                    continue
                if gnum == 1:  # node: keep a few, and the first of each quantization op
                    op = b""
                    for nnum, _, _, npayload in fields(gpayload):
                        if nnum == 4:
                            op = npayload
                    wanted = op in (b"DynamicQuantizeLinear", b"ConvInteger") and op not in kept_ops
                    if nodes >= 3 and not wanted:
                        continue
                    nodes += 1
                    kept_ops.add(op)
                if gnum == 13:  # value_info: shapes of intermediate tensors, not read
                    continue
                graph += graw
            out += length_delimited(7, bytes(graph))
        else:
            if number == 14 and wire == 2:  # metadata_props
                kv = {n: p for n, _, _, p in fields(payload)}
                props[kv.get(1, b"").decode(errors="replace")] = kv.get(2, b"")
            out += raw
    return bytes(out), props


# ---------------------------------------------------------------- image helpers
def jpeg_size(data):
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    return None


def with_eoi(prefix):
    return prefix + b"\xff\xd9"


# ---------------------------------------------------------------- per-target seeds
def derive(out, assets):
    images = sorted((assets / "images").glob("*.jpg")) if assets else []
    coco = assets / "datasets" / "coco128" if assets else None
    coco_images = sorted((coco / "images").glob("*.jpg"), key=lambda p: p.stat().st_size) \
        if coco and coco.is_dir() else []
    models = sorted((assets / "models").glob("*.onnx")) if assets else []

    for path in images + coco_images[:4]:
        data = path.read_bytes()
        # Header probing and EXIF need only the segments before the scan: a prefix keeps
        # the inputs short, so the fuzzer mutates what matters.
        put(out, "image_header", path.stem + ".head", data[:8192])
        put(out, "jpeg_exif", path.stem + ".head", data[:4096])
    for path in [p for p in images if p.stat().st_size < 64 << 10] + coco_images[:4]:
        put(out, "image_decode", path.name, path.read_bytes())
        put(out, "image_header", path.name, path.read_bytes())
    if images:
        part = with_eoi(images[-1].read_bytes()[:1024])
        body = (b"--xYzZY\r\nContent-Disposition: form-data; name=\"image\"; "
                b"filename=\"zidane.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n" + part +
                b"\r\n--xYzZY--\r\n")
        put(out, "multipart", "image_part", b"multipart/form-data; boundary=xYzZY\n" + body)
        request = (b"POST /v1/models/m/predict?conf=0.4 HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: multipart/form-data; boundary=xYzZY\r\nContent-Length: " +
                   str(len(body)).encode() + b"\r\n\r\n" + body)
        put(out, "http_transport", "multipart_post", request)

    if coco and coco.is_dir():
        for label in sorted((coco / "labels").glob("*.txt")):
            put(out, "yolo_labels", label.name, label.read_bytes())
        yaml = coco / "coco128.yaml"
        if yaml.is_file():
            put(out, "names_file", "coco128.yaml", yaml.read_bytes())
        # A COCO instances document from the first labelled images, named as the harness's
        # image directory provides them (a.jpg, b.jpg, 000000000009.jpg).
        doc = {"images": [], "annotations": [], "categories": []}
        classes = set()
        names = ["000000000009.jpg", "a.jpg", "b.jpg"]
        labelled = [p for p in sorted((coco / "images").glob("*.jpg"))
                    if (coco / "labels" / (p.stem + ".txt")).is_file()][:3]
        for image_id, (path, name) in enumerate(zip(labelled, names), start=1):
            size = jpeg_size(path.read_bytes()) or (640, 480)
            doc["images"].append({"id": image_id, "file_name": name, "width": size[0],
                                  "height": size[1]})
            for line in (coco / "labels" / (path.stem + ".txt")).read_text().splitlines():
                v = line.split()
                if len(v) != 5:
                    continue
                c, cx, cy, w, h = int(v[0]), *map(float, v[1:])
                classes.add(c)
                bw, bh = w * size[0], h * size[1]
                x, y = cx * size[0] - bw / 2, cy * size[1] - bh / 2
                doc["annotations"].append({
                    "id": len(doc["annotations"]) + 1, "image_id": image_id, "category_id": c + 1,
                    "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                    "segmentation": [[round(x, 1), round(y, 1), round(x + bw, 1), round(y, 1),
                                      round(x + bw, 1), round(y + bh, 1)]],
                    "area": round(bw * bh, 1), "iscrowd": 0})
        coco_names = ["person", "bicycle", "car", "motorcycle"]
        doc["categories"] = [{"id": c + 1, "name": coco_names[c] if c < 4 else "class%d" % c}
                             for c in sorted(classes)]
        text = json.dumps(doc)
        put(out, "coco_json", "coco128_subset.json", text)
        put(out, "json_depth", "coco128_subset.json", text)

    for path in models:
        stripped, props = strip_onnx(path.read_bytes())
        put(out, "onnx_model_info", path.stem + ".onnx", stripped)
        put(out, "doctor_model", path.stem + ".onnx", stripped)  # the doctor's model checks
        for key, value in props.items():
            if value:
                put(out, "metadata_literals", path.stem + "." + key, value)
                if key == "names":
                    put(out, "names_file", path.stem + ".names", value)

    for fixture in sorted(FIXTURES.glob("*.json")):
        text = fixture.read_bytes()
        put(out, "kserve_request", fixture.name, text)
        put(out, "json_depth", "kserve_" + fixture.name, text)
        # Requests with binary inputs also as the binary extension sends them: the JSON
        # header, its length in the HL line, then the tensor bytes.
        try:
            doc = json.loads(text)
            sizes = [i.get("parameters", {}).get("binary_data_size", 0)
                     for i in doc.get("inputs", [])]
        except (ValueError, AttributeError):
            continue
        if any(isinstance(s, int) and s > 0 for s in sizes):
            binary = bytes(range(256)) * (sum(s for s in sizes if isinstance(s, int)) // 256 + 1)
            binary = binary[:sum(s for s in sizes if isinstance(s, int))]
            put(out, "kserve_request", "binary_" + fixture.name,
                b"HL:%d\n" % len(text) + text + binary)
        if fixture.name.startswith("request_") and len(text) < 2048:
            put(out, "http_transport", "infer_" + fixture.stem,
                b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nContent-Length: %d\r\n\r\n" % len(text) + text)

    # The small encoded images of the decoder are header seeds too.
    for seed in sorted((SEEDS / "image_decode").glob("*")):
        put(out, "image_header", seed.name, seed.read_bytes())

    # Every committed JSON seed of the JSON targets is a seed of the depth scan too.
    for target in ("model_config", "calibration_table", "coco_json", "kserve_request"):
        for seed in sorted((SEEDS / target).glob("*")):
            if seed.suffix == ".json":
                put(out, "json_depth", target + "_" + seed.name, seed.read_bytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--assets", type=Path,
                        default=Path(os.environ.get("CVDEPLOY_ASSETS") or REPO.parent / "shared" /
                                     "assets"))
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    for target_dir in sorted(p for p in SEEDS.iterdir() if p.is_dir()):
        shutil.copytree(target_dir, args.out / target_dir.name)
    assets = args.assets if args.assets.is_dir() else None
    if assets is None:
        print("make_seeds: %s not found: hand-written seeds only" % args.assets, file=sys.stderr)
    derive(args.out, assets)


if __name__ == "__main__":
    main()
