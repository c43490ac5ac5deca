#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The data key never in a file on disk (issue 15, "Trusted execution"): an encrypted, signed
package is served by `cvdeploy serve --decrypt-key-cmd` whose command unseals the key from a
TPM 2.0 (swtpm started here on 127.0.0.1); data.key is deleted after sealing. The server's
predictions equal those of the plain model (cvdeploy predict), and once the TPM is gone a new
server cannot open the package (exit 3, the key command named).
Usage: tpm_serve_test.py --cvdeploy BUILD/cvdeploy (assets from $CVDEPLOY_ASSETS)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import swtpm_fixture as fx  # noqa: E402

CVDEPLOY = None
ASSETS = os.environ.get("CVDEPLOY_ASSETS") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "assets")


def cli(*args, check=True):
    r = subprocess.run([CVDEPLOY, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"cvdeploy {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def wait_listening(proc, err_path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = open(err_path, encoding="utf-8", errors="replace").read()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {text}")
        time.sleep(0.05)
    raise AssertionError("server did not listen: " + open(err_path).read())


def wait_ready(port, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=5) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def predict(port, image):
    with open(image, "rb") as f:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/m/predict", data=f.read(),
                                     headers={"Content-Type": "image/jpeg"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())["detections"]


class ServeWithSealedKey(unittest.TestCase):
    def test_serves_with_the_key_from_the_tpm_and_not_without_it(self):
        fx.require_tools()
        with tempfile.TemporaryDirectory(prefix="tpm-serve-") as work:
            model = os.path.join(ASSETS, "models", "yolov8n-dq.onnx")
            cli("keygen", "--kind", "data", "--out", os.path.join(work, "keys"))
            cli("keygen", "--kind", "signing", "--out", os.path.join(work, "signer"))
            trusted = os.path.join(work, "trusted")
            os.makedirs(trusted)
            os.replace(os.path.join(work, "signer", "signing.pub"), os.path.join(trusted, "s.pub"))
            key_file = os.path.join(work, "keys", "data.key")
            package = os.path.join(work, "m.cvdm")
            cli("pack", "--model", model, "--out", package, "--encrypt-key", key_file,
                "--sign-key", os.path.join(work, "signer", "signing.key"))
            with open(key_file, encoding="ascii") as f:
                key_text = f.read()
            unseal_cmd, stop_tpm = fx.start_sealed_key(key_text, work)
            self.addCleanup(stop_tpm)
            os.remove(key_file)  # from here on the key exists only sealed in the TPM
            flags = ["--model", package + ":m", "--trusted-keys", trusted, "--require-signed",
                     "--decrypt-key-cmd", unseal_cmd, "--host", "127.0.0.1", "--port", "0"]
            err_path = os.path.join(work, "serve.err")
            with open(err_path, "w") as err:
                server = subprocess.Popen([CVDEPLOY, "serve", *flags], stdout=subprocess.DEVNULL,
                                          stderr=err, stdin=subprocess.DEVNULL)
            self.addCleanup(server.kill)
            port = wait_listening(server, err_path)
            self.assertTrue(wait_ready(port), open(err_path).read())
            for image in ("bus.jpg", "zidane.jpg"):
                path = os.path.join(ASSETS, "images", image)
                served = predict(port, path)
                plain = json.loads(cli("predict", "--model", model, "--source", path, "--json",
                                       "-").stdout.splitlines()[0])["detections"]
                self.assertTrue(served)
                self.assertEqual(served, plain, image)
            self.assertNotIn(key_text.strip(), open(err_path).read())
            server.terminate()
            server.wait(timeout=60)

            # Without the TPM the key cannot be had: the package does not open.
            stop_tpm()
            r = subprocess.run([CVDEPLOY, "serve", *flags], capture_output=True, text=True,
                               timeout=300)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn("--decrypt-key-cmd", r.stderr)
            self.assertNotIn(key_text.strip(), r.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cvdeploy", required=True)
    args, rest = parser.parse_known_args()
    CVDEPLOY = os.path.abspath(args.cvdeploy)
    unittest.main(argv=[sys.argv[0], *rest])
