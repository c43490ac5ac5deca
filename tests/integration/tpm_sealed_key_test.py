#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Data-key sealing to a TPM 2.0 (issue 15, "Trusted execution"): scripts/tpm-seal-key.sh and
scripts/tpm-unseal-key.sh against a software TPM (swtpm) started here on 127.0.0.1.

Shown: the key round-trips exactly (the text of data.key, nothing else on stdout); a key bound
to PCRs does not unseal once one of them changes (and does after a TPM reset, as after a reboot
into the same boot chain); another TPM (a fresh swtpm state) cannot unseal the blobs; the blobs
do not contain the key; every refusal exits non-zero with one stderr line and an empty stdout.
Fails (does not skip) without swtpm/tpm2-tools: scripts/setup-deps.sh installs them."""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import swtpm_fixture as fx  # noqa: E402


def random_key_text():
    return secrets.token_hex(32) + "\n"


class TpmTestCase(unittest.TestCase):
    def setUp(self):
        fx.require_tools()  # MissingTools is an AssertionError: a failure, not a skip
        self._tmp = tempfile.TemporaryDirectory(prefix="tpm-sealed-key-")
        self.work = self._tmp.name
        self.tpm = fx.SoftwareTpm(os.path.join(self.work, "state-a")).start()
        self.addCleanup(self._tmp.cleanup)
        self.addCleanup(self.tpm.stop)

    def unseal(self, sealed_dir, tpm=None):
        return subprocess.run([fx.UNSEAL_SCRIPT, sealed_dir], env=(tpm or self.tpm).env(),
                              capture_output=True, text=True, timeout=60)

    def seal_ok(self, key_text, name="sealed", pcrs=None):
        sealed = os.path.join(self.work, name)
        r = fx.seal(self.tpm, key_text, sealed, pcrs)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        return sealed

    def assert_refused(self, r, prog, reason, key_text=None):
        """Non-zero exit, nothing on stdout, exactly one stderr line naming `reason`."""
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout, "")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith(prog + ": error: "), lines[0])
        self.assertIn(reason, lines[0])
        if key_text:
            self.assertNotIn(key_text.strip().lower(), r.stderr.lower())


class RoundTripTest(TpmTestCase):
    def test_key_from_stdin_unseals_to_the_same_text(self):
        key = random_key_text()
        sealed = self.seal_ok(key)
        self.assertEqual(sorted(os.listdir(sealed)), ["seal.meta", "seal.priv", "seal.pub"])
        r = self.unseal(sealed)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, key)  # exactly 64 hex digits + newline, nothing else
        self.assertEqual(r.stderr, "")
        # Repeatable: the script flushes what it loads (swtpm has three object slots).
        for _ in range(4):
            self.assertEqual(self.unseal(sealed).stdout, key)

    def test_key_file_uppercase_and_no_newline_unseal_as_keygen_writes_it(self):
        key = random_key_text()
        key_file = os.path.join(self.work, "data.key")
        with open(key_file, "w") as f:
            f.write(key.strip().upper())
        sealed = os.path.join(self.work, "sealed")
        r = subprocess.run([fx.SEAL_SCRIPT, "--key-file", key_file, sealed], env=self.tpm.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.unseal(sealed).stdout, key)

    def test_sealed_files_do_not_contain_the_key(self):
        key = random_key_text()
        sealed = self.seal_ok(key, pcrs="sha256:0,7")
        raw = bytes.fromhex(key.strip())
        for name in os.listdir(sealed):
            with open(os.path.join(sealed, name), "rb") as f:
                data = f.read()
            for needle in (key.strip().encode(), key.strip().upper().encode(), raw):
                self.assertNotIn(needle, data, name)
            self.assertEqual(os.stat(os.path.join(sealed, name)).st_mode & 0o077, 0, name)
        self.assertEqual(self.unseal(sealed).stdout, key)  # the search was over real blobs

    def test_same_tpm_state_after_restart_still_unseals(self):
        key = random_key_text()
        plain = self.seal_ok(key, "plain")
        bound = self.seal_ok(key, "bound", pcrs="sha256:0,7")
        self.tpm.restart()  # new process, new port, same owner seed; PCRs back to their reset values
        self.assertEqual(self.unseal(plain).stdout, key)
        self.assertEqual(self.unseal(bound).stdout, key)

    def test_helper_for_the_serve_end_to_end_test(self):
        key = random_key_text()
        work = os.path.join(self.work, "helper")
        os.makedirs(work)
        cmd, stop = fx.start_sealed_key(key, work, pcrs="sha256:7")
        try:
            r = subprocess.run(["/bin/sh", "-c", cmd], env={"PATH": os.environ["PATH"]},
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, key)
        finally:
            stop()
        r = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=60)
        self.assert_refused(r, "tpm-unseal-key", "TPM not reachable")  # swtpm gone


class RefusalTest(TpmTestCase):
    def test_changed_pcr_refuses_and_other_pcrs_do_not_matter(self):
        key = random_key_text()
        sealed = self.seal_ok(key, pcrs="sha256:0,7")
        self.tpm.extend_pcr(1)  # not in the selection
        self.assertEqual(self.unseal(sealed).stdout, key)
        self.tpm.extend_pcr(7)
        self.assert_refused(self.unseal(sealed), "tpm-unseal-key", "a policy check failed", key)

    def test_key_bound_to_pcrs_needs_the_policy_session(self):
        key = random_key_text()
        sealed = self.seal_ok(key, pcrs="sha256:7")
        with open(os.path.join(sealed, "seal.meta")) as f:
            meta = f.read()
        with open(os.path.join(sealed, "seal.meta"), "w") as f:  # claim "no policy": password auth
            f.write(meta.replace("pcrs=sha256:7", "pcrs=none"))
        self.assert_refused(self.unseal(sealed), "tpm-unseal-key", "tpm2_unseal", key)

    def test_another_tpm_cannot_unseal(self):
        key = random_key_text()
        for pcrs, name in ((None, "plain"), ("sha256:0,7", "bound")):
            sealed = self.seal_ok(key, name, pcrs)
            other = fx.SoftwareTpm(os.path.join(self.work, "state-b-" + name)).start()
            try:
                self.assert_refused(self.unseal(sealed, other), "tpm-unseal-key", "tpm2_load", key)
            finally:
                other.stop()
            self.assertEqual(self.unseal(sealed).stdout, key)  # the first TPM still can

    def test_tampered_private_blob_refused(self):
        key = random_key_text()
        sealed = self.seal_ok(key)
        path = os.path.join(sealed, "seal.priv")
        with open(path, "rb") as f:
            blob = bytearray(f.read())
        blob[len(blob) // 2] ^= 0x01
        with open(path, "wb") as f:
            f.write(blob)
        self.assert_refused(self.unseal(sealed), "tpm-unseal-key", "tpm2_load", key)

    def test_unreachable_tpm_refused(self):
        sealed = self.seal_ok(random_key_text())
        self.tpm.stop()
        self.assert_refused(self.unseal(sealed), "tpm-unseal-key",
                            f"TPM2TOOLS_TCTI={self.tpm.tcti}, TPM not reachable")

    def test_unseal_usage_and_missing_dir(self):
        r = subprocess.run([fx.UNSEAL_SCRIPT], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "")
        self.assert_refused(self.unseal(os.path.join(self.work, "nope")), "tpm-unseal-key",
                            "seal.pub is missing")

    def test_seal_rejects_bad_input_without_writing_blobs(self):
        key = random_key_text()
        cases = [
            ("not hex", "z" * 64 + "\n", [], "not 64 hex digits"),
            ("63 digits", key[:63] + "\n", [], "not 64 hex digits"),
            ("65 digits", key.strip() + "a\n", [], "not 64 hex digits"),
            ("two lines", key + key, [], "not 64 hex digits"),
            ("empty", "", [], "not 64 hex digits"),
            ("bad pcrs", key, ["--pcrs", "sha256:x"], "not a PCR selection"),
            ("unknown bank", key, ["--pcrs", "md5:0"], "not a PCR selection"),
        ]
        for what, text, extra, reason in cases:
            with self.subTest(what):
                sealed = os.path.join(self.work, "bad-" + what.replace(" ", "-"))
                r = subprocess.run([fx.SEAL_SCRIPT] + extra + [sealed], input=text, env=self.tpm.env(),
                                   capture_output=True, text=True, timeout=60)
                self.assert_refused(r, "tpm-seal-key", reason, key)
                self.assertFalse(os.path.exists(os.path.join(sealed, "seal.priv")))
        r = subprocess.run([fx.SEAL_SCRIPT, "--bogus", "d"], input=key, capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([fx.SEAL_SCRIPT, "--key-file", os.path.join(self.work, "absent"), "d"],
                           capture_output=True, text=True)
        self.assert_refused(r, "tpm-seal-key", "cannot read key file")

    def test_seal_refuses_to_overwrite_and_to_run_without_tpm(self):
        key = random_key_text()
        sealed = self.seal_ok(key)
        r = fx.seal(self.tpm, random_key_text(), sealed)
        self.assert_refused(r, "tpm-seal-key", "already holds a sealed key")
        self.assertEqual(self.unseal(sealed).stdout, key)  # the first key is untouched
        self.tpm.stop()
        other = os.path.join(self.work, "no-tpm")
        self.assert_refused(fx.seal(self.tpm, key, other), "tpm-seal-key", "tpm2_createprimary", key)
        self.assertFalse(os.path.exists(os.path.join(other, "seal.priv")))


class MissingToolsTest(unittest.TestCase):
    def test_missing_tools_fail_rather_than_skip(self):
        saved = os.environ["PATH"]
        os.environ["PATH"] = "/nonexistent"
        try:
            with self.assertRaises(AssertionError) as ctx:
                fx.require_tools()
        finally:
            os.environ["PATH"] = saved
        self.assertIn("swtpm", str(ctx.exception))

    def test_scripts_name_the_missing_tool(self):
        with tempfile.TemporaryDirectory() as work:
            bin_dir = os.path.join(work, "bin")  # the shell utilities, but no tpm2-tools
            os.makedirs(bin_dir)
            for tool in ("bash", "dirname", "sed", "head", "grep", "tail", "cat", "mktemp", "rm"):
                os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
            sealed = os.path.join(work, "sealed")
            os.makedirs(sealed)
            for name, text in (("seal.pub", "x"), ("seal.priv", "x"),
                               ("seal.meta", "format=1\nprimary=ecc256:aes128cfb\npcrs=none\n")):
                with open(os.path.join(sealed, name), "w") as f:
                    f.write(text)
            env = {"PATH": bin_dir}
            r = subprocess.run([fx.UNSEAL_SCRIPT, sealed], env=env, capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertEqual(r.stderr.strip(), "tpm-unseal-key: error: tpm2_createprimary not found "
                             "(install tpm2-tools: scripts/setup-deps.sh)")
            r = subprocess.run([fx.SEAL_SCRIPT, os.path.join(work, "out")], input=random_key_text(),
                               env=env, capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertIn("tpm2_createprimary not found", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
