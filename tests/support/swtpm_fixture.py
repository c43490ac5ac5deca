#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A software TPM 2.0 (swtpm) on 127.0.0.1 for tests, and a data key sealed to it with
scripts/tpm-seal-key.sh.

Reuse from Python (the end-to-end test of `cvdeploy serve --decrypt-key-cmd`):

    sys.path.insert(0, os.path.join(REPO, "tests", "support"))
    import swtpm_fixture
    cmd, stop = swtpm_fixture.start_sealed_key(key_text, work_dir, pcrs="sha256:0,7")
    try:  ... cvdeploy serve ... --decrypt-key-cmd cmd ...
    finally: stop()

`cmd` is a /bin/sh command line that prints the key text (64 hex digits + newline) and carries
its own TPM2TOOLS_TCTI, so it works whatever the caller's environment. After stop() it fails.

Reuse from another language (a C++ test): `python3 tests/support/swtpm_fixture.py hold WORK_DIR
[--pcrs SEL]` reads the key text from stdin's first line, starts swtpm, seals, prints one JSON
line {"unseal_cmd": ..., "tcti": ..., "sealed_dir": ...}, then keeps swtpm running until stdin
is closed or it gets SIGTERM/SIGINT.

Contracts: MissingTools (an AssertionError, so a test FAILS rather than skips) when swtpm or
tpm2-tools are not installed (scripts/setup-deps.sh installs them); RuntimeError when swtpm does
not start. Not thread-safe; one SoftwareTpm per test is the intended use. Keys are never logged.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SEAL_SCRIPT = os.path.join(REPO, "scripts", "tpm-seal-key.sh")
UNSEAL_SCRIPT = os.path.join(REPO, "scripts", "tpm-unseal-key.sh")
REQUIRED_TOOLS = ("swtpm", "tpm2_createprimary", "tpm2_create", "tpm2_createpolicy", "tpm2_load",
                  "tpm2_unseal", "tpm2_startauthsession", "tpm2_policypcr", "tpm2_flushcontext",
                  "tpm2_getcap", "tpm2_pcrextend")


class MissingTools(AssertionError):
    """swtpm or tpm2-tools are not installed: a test failure, not a skip."""


def require_tools():
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise MissingTools("not installed: " + ", ".join(missing) +
                           " (Debian swtpm + tpm2-tools; run scripts/setup-deps.sh)")


def _free_port_pair():
    """A TCP port P with P+1 also free on 127.0.0.1 a moment ago. tpm2-tools' swtpm TCTI
    takes only the server port and talks to the control channel on port + 1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port, port + 1
    raise RuntimeError("no free pair of adjacent TCP ports on 127.0.0.1")


class SoftwareTpm:
    """swtpm socket --tpm2 on 127.0.0.1 with its state (owner seed, NV) in `state_dir`.
    The same state_dir after stop()/start() is the same TPM; another state_dir is another TPM."""

    def __init__(self, state_dir, log_path=None):
        self.state_dir = state_dir
        self.log_path = log_path or os.path.join(state_dir, "..", os.path.basename(state_dir) + ".log")
        self.port = None
        self.ctrl_port = None
        self._proc = None

    @property
    def tcti(self):
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def env(self):
        """os.environ with TPM2TOOLS_TCTI pointing at this TPM."""
        env = dict(os.environ)
        env["TPM2TOOLS_TCTI"] = self.tcti
        return env

    def start(self, timeout_s=10.0):
        require_tools()
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        last_error = "no attempt"
        for _ in range(5):  # a port taken between _free_port_pair and swtpm's bind: try others
            self.port, self.ctrl_port = _free_port_pair()
            with open(self.log_path, "ab") as log:
                self._proc = subprocess.Popen(
                    ["swtpm", "socket", "--tpm2",
                     "--server", f"type=tcp,port={self.port},bindaddr=127.0.0.1",
                     "--ctrl", f"type=tcp,port={self.ctrl_port},bindaddr=127.0.0.1",
                     "--tpmstate", f"dir={self.state_dir}",
                     "--flags", "not-need-init,startup-clear"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self._proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
                except OSError:
                    time.sleep(0.05)
            last_error = f"exit code {self._proc.poll()}" if self._proc.poll() is not None else "timeout"
            self.stop()
        raise RuntimeError(f"swtpm did not start ({last_error}); see {self.log_path}")

    def stop(self):
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None

    def restart(self):
        self.stop()
        return self.start()

    def run_tool(self, args, **kwargs):
        """A tpm2-tools command against this TPM (stdout/stderr captured as text)."""
        return subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=60, **kwargs)

    def extend_pcr(self, index, bank="sha256"):
        digest = "ab" * (32 if bank == "sha256" else 20)
        r = self.run_tool(["tpm2_pcrextend", f"{index}:{bank}={digest}"])
        if r.returncode != 0:
            raise RuntimeError(f"tpm2_pcrextend {index} failed: {r.stderr.strip()}")


def seal(tpm, key_text, sealed_dir, pcrs=None):
    """Runs tpm-seal-key.sh with the key on stdin; returns the CompletedProcess."""
    args = [SEAL_SCRIPT] + (["--pcrs", pcrs] if pcrs else []) + [sealed_dir]
    return subprocess.run(args, input=key_text, env=tpm.env(), capture_output=True, text=True, timeout=60)


def unseal_command(tpm, sealed_dir):
    """A /bin/sh command line that prints the sealed key, with this TPM's TCTI in it."""
    return (f"TPM2TOOLS_TCTI={shlex.quote(tpm.tcti)} "
            f"{shlex.quote(UNSEAL_SCRIPT)} {shlex.quote(sealed_dir)}")


def start_sealed_key(key_text, work_dir, pcrs=None):
    """Starts swtpm (state in work_dir/tpm-state), seals key_text (64 hex digits, optional
    newline) into work_dir/sealed-key, and returns (unseal_command_line, stop_function).
    Raises MissingTools, or RuntimeError when swtpm or sealing fails."""
    tpm, sealed_dir = _start_and_seal(key_text, work_dir, pcrs)
    return unseal_command(tpm, sealed_dir), tpm.stop


def _start_and_seal(key_text, work_dir, pcrs):
    tpm = SoftwareTpm(os.path.join(work_dir, "tpm-state")).start()
    sealed_dir = os.path.join(work_dir, "sealed-key")
    r = seal(tpm, key_text, sealed_dir, pcrs)
    if r.returncode != 0:
        tpm.stop()
        raise RuntimeError(f"tpm-seal-key.sh failed: {r.stderr.strip()}")
    return tpm, sealed_dir


def _hold(argv):
    parser = argparse.ArgumentParser(prog="swtpm_fixture.py hold")
    parser.add_argument("work_dir")
    parser.add_argument("--pcrs")
    args = parser.parse_args(argv)
    key_text = sys.stdin.readline()
    tpm, sealed_dir = _start_and_seal(key_text, args.work_dir, args.pcrs)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        print(json.dumps({"unseal_cmd": unseal_command(tpm, sealed_dir), "tcti": tpm.tcti,
                          "sealed_dir": sealed_dir}), flush=True)
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        done.wait()
    finally:
        tpm.stop()
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "hold":
        sys.exit(_hold(sys.argv[2:]))
    print("usage: swtpm_fixture.py hold WORK_DIR [--pcrs SEL]  (key text on stdin)", file=sys.stderr)
    sys.exit(2)
