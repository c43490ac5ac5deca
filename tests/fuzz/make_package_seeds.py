#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the committed seeds of the model_package fuzz target (tests/fuzz/seeds/model_package/).

An independent implementation of docs/security.md "Model package format" (Python + the
`cryptography` package of Debian's python3-cryptography), with the fuzz harness's fixed data key
and Ed25519 key, so that the harness's decryption and signature paths succeed on the seeds and
the C++ reader is checked against a second writer. Run with /usr/bin/python3:
    /usr/bin/python3 tests/fuzz/make_package_seeds.py tests/fuzz/seeds/model_package
Not part of make_seeds.py, which is standard library only.
"""
import base64, hashlib, json, struct, sys, os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes, serialization, hmac

DATA = bytes.fromhex("ec0ff18de76bb5e970496b871588bb5448119e8d99c47c365897a854f31669bc")
PEM = b"""-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEKbiOLGbwzKx6uKveAKDAuE20D1RrfyTbH4Cd+3yPgu
-----END PRIVATE KEY-----
"""
sk = serialization.load_pem_private_key(PEM, None)
raw_pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
fp = "ed25519:" + hashlib.sha256(raw_pub).digest()[:16].hex()
h = hmac.HMAC(DATA, hashes.SHA256()); h.update(b"cvdeploy data key id v1"); key_id = h.finalize().hex()[:16]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def package(parts, encrypt, sign, extra=None):
    m = {"name": "seed", "version": 1, "format_version": 1, "created": "2026-12-03T17:00:00Z",
         "entries": [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in parts],
         "encryption": None, "signer": None}
    salt, nonce = os.urandom(32), os.urandom(12)
    if encrypt:
        m["encryption"] = {"alg": "AES-256-GCM", "kdf": "HKDF-SHA256", "salt": b64(salt), "nonce": b64(nonce), "key_id": key_id}
    if sign:
        m["signer"] = {"alg": "Ed25519", "fingerprint": fp}
    if extra: m.update(extra)
    text = json.dumps(m, separators=(",", ":")).encode()
    out = b"CVDMPKG1" + struct.pack("<HHI", 1, (1 if encrypt else 0) | (2 if sign else 0), len(text)) + text
    plain = b"".join(b for _, b in parts)
    if encrypt:
        k = HKDF(hashes.SHA256(), 32, salt, b"cvdeploy model package v1").derive(DATA)
        payload = AESGCM(k).encrypt(nonce, plain, out)
    else:
        payload = plain
    out += struct.pack("<Q", len(payload)) + payload
    if sign:
        sig = sk.sign(out)
        out += struct.pack("<H", 64) + sig
    else:
        out += struct.pack("<H", 0)
    return out

d = sys.argv[1]
parts = [("model.onnx", b"\x08\x07fake onnx model"), ("golden/bus.jpg", b"\xff\xd8\xff\xe0 jpeg")]
seeds = {
    "plain": package(parts[:1], False, False),
    "signed": package(parts, False, True),
    "encrypted": package(parts, True, False),
    "encrypted_signed": package(parts, True, True, {"model": {"contract": {"task": "detect", "imgsz": [640, 640]}}}),
    "write_mode": b"W\x03" + json.dumps({"name": "w", "model": {"sha256": "00"}}).encode() + b"\0model bytes\0golden bytes",
    "write_mode_plain": b"W\x00{}\0x",
}
for n, b in seeds.items():
    open(os.path.join(d, n), "wb").write(b)
print(key_id, fp)
