#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make test-deb: the Debian package installed into a fresh bookworm root filesystem.

Checks, in order (any failure: exit 1 with FAIL: and the reason):
 1. The package: dpkg-deb fields (Depends from dpkg-shlibdeps, nothing naming ONNX Runtime),
    /usr/bin/cvdeploy's RUNPATH is /usr/lib/cvdeploy, the conffile; lintian without E:/W:
    tags (overrides applied; with --no-lintian skipped).
 2. The unit: `systemd-analyze verify` (on a copy whose ExecStart names the binary installed in
    the root filesystem: path substitution, since the root filesystem has no systemd) with no
    diagnostic at all, and `systemd-analyze security --offline` at or under --max-exposure.
 3. The syscall filter of the unit against the syscalls the server makes: the host build's
    `cvdeploy serve` under strace, one predict, SIGTERM; every syscall must be allowed by the
    unit's SystemCallFilter= lines (expanded by `systemd-analyze syscall-filter`).
 4. A fresh root filesystem: `mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus
    bookworm` (cached as a tarball under ~/.cache/cvdeploy; made once, from the Debian mirror
    this machine's apt uses), unpacked into a temporary directory, /proc and /dev mounted;
    `apt-get install ./cvdeploy_*.deb` there (dependencies from that mirror).
 5. In the chroot: the cvdeploy system user (no login shell, home /var/lib/cvdeploy), the
    directories and their owners, /usr/lib/cvdeploy/libonnxruntime.so.1 and ldd resolving it
    there, `cvdeploy --version`, `cvdeploy predict` on bus.jpg with yolo11n-dq as the cvdeploy
    user, under the kernel's memory-deny-write-execute (PR_SET_MDWE, what the unit's
    MemoryDenyWriteExecute= enforces), detections equal to the host build's.
 6. `systemd-analyze verify` inside the root filesystem too; the unit's own command line
    (ExecStart, expanded with /etc/cvdeploy/cvdeploy.env and a free port) run in the chroot as
    cvdeploy: ready, one predict over HTTP with the host build's detections, SIGTERM -> exit 0.
 7. The root filesystem booted with systemd-nspawn (host network, the env file's port set to a
    free one): the unit postinst enabled starts under systemd with its whole sandbox, answers a
    predict, runs as cvdeploy with NoNewPrivs, a seccomp filter and no capabilities;
    `systemctl stop` drains and exits 0.
 8. apt-get purge: user, /etc/cvdeploy and /var/log/cvdeploy gone, a non-empty model
    repository kept.

--smoke (CTest deb_unit_smoke, seconds, no root, no package): only 2 and 3, on the host
build's binary (3 only where strace is installed); exit 77 (skipped) without systemd-analyze.

Usage: test_deb.py --build BUILD [--deb FILE] [--assets DIR] [--cache DIR] [--keep]
                   [--no-lintian] [--max-exposure 2.0] [--smoke]
Needs root (chroot, mounts) and the tools of scripts/setup-deb.sh.
"""
import argparse
import contextlib
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

VERSION_RE = re.compile(r"^cvdeploy \d+\.\d+\.\d+")
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
SKIPPED = 77


class Fail(Exception):
    pass


def log(message):
    print(message, flush=True)


def run(cmd, check=True, env=None, timeout=900, quiet=False):
    if not quiet:
        log("+ " + " ".join(shlex.quote(str(c)) for c in cmd))
    done = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise Fail(f"exit {done.returncode}: {' '.join(map(str, cmd))}\n{done.stdout[-4000:]}")
    return done.stdout


def expect(condition, message):
    if not condition:
        raise Fail(message)
    log("ok: " + message)


# ---- 1. the package -------------------------------------------------------------------------
def check_package(deb, lintian):
    fields = run(["dpkg-deb", "-f", deb, "Package", "Version", "Architecture", "Depends"],
                 quiet=True)
    depends = re.search(r"^Depends: (.*)$", fields, re.M)
    expect(depends is not None, "the package has a Depends field")
    names = [d.strip().split()[0] for d in depends.group(1).split(",")]
    for needed in ("libc6", "libstdc++6", "libopencv-core406", "libssl3", "libsodium23",
                   "adduser"):
        expect(needed in names, f"Depends names {needed}")
    expect(not any("onnxruntime" in n for n in names),
           "Depends names no ONNX Runtime package (the private copy is inside)")
    with tempfile.TemporaryDirectory() as tmp:
        run(["dpkg-deb", "-x", deb, tmp], quiet=True)
        dynamic = run(["readelf", "-d", os.path.join(tmp, "usr/bin/cvdeploy")], quiet=True)
        runpath = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library \w+: \[(.*)\]", dynamic)
        expect(runpath == ["/usr/lib/cvdeploy"], f"RUNPATH of /usr/bin/cvdeploy is {runpath}")
        expect(os.path.isfile(os.path.join(tmp, "usr/lib/cvdeploy/libonnxruntime.so.1")),
               "/usr/lib/cvdeploy/libonnxruntime.so.1 is in the package")
        expect(not glob.glob(os.path.join(tmp, "usr/lib/*.so*")) and
               not os.path.exists(os.path.join(tmp, "usr/include")),
               "nothing in /usr/lib itself, no headers (runtime package only)")
    with tempfile.TemporaryDirectory() as tmp:
        run(["dpkg-deb", "-e", deb, tmp], quiet=True)
        with open(os.path.join(tmp, "conffiles"), encoding="utf-8") as f:
            expect(f.read().split() == ["/etc/cvdeploy/cvdeploy.env"],
                   "conffiles: /etc/cvdeploy/cvdeploy.env")
    if lintian:
        out = run(["lintian", "--allow-root", "-I", "--fail-on", "none", deb], quiet=True)
        bad = [line for line in out.splitlines() if re.match(r"^[EW]: ", line)]
        expect(not bad, "lintian: no E:/W: tags" + ("" if not bad else ":\n" + "\n".join(bad)))
        info = [line for line in out.splitlines() if line.startswith("I: ")]
        log(f"lintian info tags ({len(info)}):\n  " + "\n  ".join(info))


# ---- 2. the unit ----------------------------------------------------------------------------
def check_unit(unit_text, binary, max_exposure):
    with tempfile.TemporaryDirectory() as tmp:
        unit = os.path.join(tmp, "cvdeploy.service")
        with open(unit, "w", encoding="utf-8") as f:
            f.write(unit_text.replace("/usr/bin/cvdeploy", binary))
        out = run(["systemd-analyze", "verify", "--man=no", unit], check=False, quiet=True)
        expect(out.strip() == "", "systemd-analyze verify: no diagnostic" +
               ("" if not out.strip() else ":\n" + out))
        out = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit],
                  check=False, quiet=True)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", out)
        expect(score is not None, "systemd-analyze security printed an exposure level")
        log(f"systemd-analyze security: exposure {score.group(1)} {score.group(2)}")
        expect(float(score.group(1)) <= max_exposure,
               f"exposure {score.group(1)} <= {max_exposure}")


def expand_syscall_groups():
    """{'@group': set(syscalls)} with nested groups expanded."""
    out = run(["systemd-analyze", "syscall-filter", "--no-pager"], quiet=True)
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())

    def expand(name, seen=()):
        result = set()
        for item in groups.get(name, []):
            result |= expand(item, seen + (name,)) if item.startswith("@") else {item}
        return result
    return {name: expand(name) for name in groups}


def allowed_syscalls(unit_text, groups):
    """The allow-list the unit's SystemCallFilter= lines build (first line: an allow-list)."""
    allowed = None
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit_text, re.M):
        deny = value.startswith("~")
        names = set()
        for item in value.lstrip("~").split():
            names |= groups[item] if item.startswith("@") else {item}
        if allowed is None:
            if deny:
                raise Fail("the unit's first SystemCallFilter= must be an allow-list")
            allowed = names
        else:
            allowed = allowed - names if deny else allowed | names
    if not allowed:
        raise Fail("the unit has no SystemCallFilter=")
    return allowed


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, process, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise Fail(f"server exited with {process.returncode} before ready")
        try:
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise Fail("server not ready within %d s" % seconds)


def http_predict(url, model, image):
    with open(image, "rb") as f:
        body = f.read()
    req = urllib.request.Request(f"{url}/v1/models/{model}/predict", data=body,
                                 headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def stop(process, seconds=60):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        raise Fail("server did not stop within %d s of SIGTERM" % seconds)


def traced_child(tracer, binary, seconds=30):
    """The pid of the traced binary: the child of strace that runs it (strace may briefly have
    another child first)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with open(f"/proc/{tracer.pid}/task/{tracer.pid}/children", encoding="ascii") as f:
                children = f.read().split()
        except OSError:
            children = []
        for child in children:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[0] == binary.encode():
                        return int(child)
            except OSError:
                pass
        time.sleep(0.1)
    raise Fail(f"strace started no {binary}")


def check_syscalls(unit_text, host_binary, model, image):
    allowed = allowed_syscalls(unit_text, expand_syscall_groups())
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace")
        port = free_port()
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", trace, "--", host_binary, "serve", "--model",
             f"{model}:m", "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            server = traced_child(tracer, host_binary)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, tracer, 120)
            http_predict(url, "m", image)
            # SIGTERM to the server itself (strace would kill it instead of forwarding).
            os.kill(server, signal.SIGTERM)
            code = tracer.wait(timeout=60)
        finally:
            if tracer.poll() is None:
                tracer.kill()
        expect(code == 0, "traced server stopped on SIGTERM with exit 0")
        used = set()
        with open(trace, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]", line)
                if m and m.group(1) not in ("exited", "killed", "resumed"):
                    used.add(m.group(1))
    # The execve that starts the binary happens before systemd applies the filter.
    denied = sorted(used - allowed - {"execve"})
    log(f"syscalls of serve + predict + drain: {len(used)}: {' '.join(sorted(used))}")
    expect(len(used) > 20, f"strace saw {len(used)} distinct syscalls")
    expect(not denied, "every syscall of serve + predict is allowed by SystemCallFilter=" +
           ("" if not denied else f"; denied: {denied}"))


# ---- 4. the root filesystem -----------------------------------------------------------------
def host_mirror():
    """The first Debian mirror of this machine's apt sources (deb822 first, then one-line)."""
    sources = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(sources):
        with open(sources, encoding="utf-8") as f:
            for line in f:
                if line.startswith("URIs:"):
                    return line.split()[1]
    for path in ["/etc/apt/sources.list"] + glob.glob("/etc/apt/sources.list.d/*.list"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if fields[:1] == ["deb"] and "security" not in line:
                    return next(x for x in fields[1:] if re.match(r"^[a-z]+://", x))
    raise Fail("no Debian mirror in /etc/apt/sources.list(.d)")


def rootfs_tarball(cache):
    tarball = os.path.join(cache, "deb-rootfs-bookworm-apt-systemd.tar")
    if os.path.exists(tarball):
        log(f"root filesystem: cached {tarball}")
        return tarball
    os.makedirs(cache, exist_ok=True)
    partial = tarball + ".partial.tar"
    # systemd as init, so that the package's unit can be booted (step 7).
    run(["mmdebstrap", "--variant=apt", "--mode=root", "--include=systemd,systemd-sysv,dbus",
         "bookworm", partial, host_mirror()])
    os.rename(partial, tarball)
    return tarball


class ApiMounts:
    """/proc and /dev of a root filesystem for chroot (unmounted while nspawn boots it)."""

    def __init__(self, root):
        self.root, self.mounted = root, []

    def mount(self):
        for source, target, options in (("proc", "proc", ["-t", "proc"]),
                                        ("/dev", "dev", ["--bind"])):
            path = os.path.join(self.root, target)
            os.makedirs(path, exist_ok=True)
            run(["mount"] + options + [source, path], quiet=True)
            self.mounted.append(path)

    def unmount(self):
        while self.mounted:
            subprocess.run(["umount", "-l", self.mounted.pop()], check=False)


@contextlib.contextmanager
def fresh_root(tarball, keep):
    root = tempfile.mkdtemp(prefix="cvdeploy-deb-root-")
    mounts = ApiMounts(root)
    try:
        run(["tar", "-C", root, "-xf", tarball], quiet=True)
        mounts.mount()
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc/resolv.conf"))
        log(f"fresh root filesystem in {root}")
        yield root, mounts
    finally:
        mounts.unmount()
        if keep:
            log(f"kept {root} (unmounted)")
        else:
            shutil.rmtree(root, ignore_errors=True)


def chroot(root, *cmd, user=None, check=True, quiet=False):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive", "HOME": "/root"}
    prefix = ["chroot"] + ([f"--userspec={user}:{user}"] if user else []) + [root]
    return run(prefix + list(cmd), check=check, env=env, quiet=quiet)


# ---- 5. the installed package ---------------------------------------------------------------
def detections(doc):
    """[(class, confidence, x1, y1, x2, y2)] of a predict JSON object (CLI line or HTTP body)."""
    return [(d["class_name"], d["confidence"], d["box"]["x1"], d["box"]["y1"], d["box"]["x2"],
             d["box"]["y2"]) for d in doc["detections"]]


def same_detections(got, want, what):
    ok = len(got) == len(want) and all(
        g[0] == w[0] and abs(g[1] - w[1]) <= 0.002 and
        all(abs(a - b) <= 1.0 for a, b in zip(g[2:], w[2:])) for g, w in zip(got, want))
    expect(ok, f"{what}: {len(got)} detections equal to the host build's" +
           ("" if ok else f"\n got  {got}\n want {want}"))


def mdwe_prefix():
    """A command prefix that sets PR_SET_MDWE (inherited through exec) before running the rest."""
    code = ("import ctypes,os,sys; libc=ctypes.CDLL(None, use_errno=True); "
            f"r=libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0); "
            "sys.exit('PR_SET_MDWE failed: errno %d' % ctypes.get_errno()) if r else None; "
            "os.execvp(sys.argv[1], sys.argv[1:])")
    return ["/usr/bin/python3", "-c", code]


def check_mdwe_enforced():
    """The prefix works: under it, a writable+executable mapping is refused."""
    probe = ("import mmap; mmap.mmap(-1, 4096, "
             "prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)")
    refused = subprocess.run(mdwe_prefix() + ["/usr/bin/python3", "-c", probe],
                             capture_output=True).returncode != 0
    allowed = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True).returncode == 0
    expect(refused and allowed, "PR_SET_MDWE refuses a W+X mapping that is allowed without it")


def check_installed(root, version, model, image, want):
    passwd = chroot(root, "getent", "passwd", "cvdeploy", quiet=True).strip().split(":")
    expect(int(passwd[2]) < 1000 and passwd[5] == "/var/lib/cvdeploy" and
           passwd[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false"),
           f"system user cvdeploy: uid {passwd[2]}, home {passwd[5]}, shell {passwd[6]}")
    expect(chroot(root, "getent", "group", "cvdeploy", check=False, quiet=True).strip() != "",
           "group cvdeploy exists")
    for path, owner in (("/var/log/cvdeploy", "cvdeploy:cvdeploy 750"),
                        ("/var/lib/cvdeploy/models", "root:cvdeploy 750"),
                        ("/etc/cvdeploy", "root:cvdeploy 750")):
        got = chroot(root, "stat", "-c", "%U:%G %a", path, quiet=True).strip()
        expect(got == owner, f"{path} is {got}")
    expect(os.path.isfile(os.path.join(root, "usr/lib/cvdeploy/libonnxruntime.so.1")),
           "/usr/lib/cvdeploy/libonnxruntime.so.1 installed")
    ldd = chroot(root, "ldd", "/usr/bin/cvdeploy", quiet=True)
    expect("not found" not in ldd and re.search(
        r"libonnxruntime\.so\.1 => /usr/lib/cvdeploy/libonnxruntime\.so\.1", ldd),
        "ldd: every library found, ONNX Runtime from /usr/lib/cvdeploy")
    out = chroot(root, "cvdeploy", "--version", quiet=True)
    expect(VERSION_RE.match(out) and version in out, f"cvdeploy --version: {out.strip()}")
    # Predict as the service user, under memory-deny-write-execute.
    check_mdwe_enforced()
    out = run(mdwe_prefix() + ["chroot", "--userspec=cvdeploy:cvdeploy", root, "/usr/bin/cvdeploy",
                               "predict", "--model", model, "--source", image, "--json", "-"])
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    expect(len(lines) == 1, "predict printed one JSON line")
    same_detections(detections(lines[0]), want, "chroot predict (cvdeploy user, MDWE)")


# ---- 6. the unit's command line -------------------------------------------------------------
def exec_start(unit_text, env_file_text, port):
    """ExecStart with the unit's Environment= defaults, then the env file, then PORT."""
    env = {}
    for value in re.findall(r"^Environment=(.*)$", unit_text, re.M):
        key, _, val = value.partition("=")
        env[key] = val
    for line in env_file_text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, val = line.partition("=")
            env[key.strip()] = val.strip()
    env["CVDEPLOY_PORT"] = str(port)
    words = []
    for word in re.search(r"^ExecStart=(.*)$", unit_text, re.M).group(1).split():
        if re.fullmatch(r"\$\{(\w+)\}", word):
            words.append(env[word[2:-1]])
        elif re.fullmatch(r"\$(\w+)", word):
            words.extend(env[word[1:]].split())
        else:
            words.append(word)
    return words


def check_service_command(root, unit_text, model_file, image, want):
    repo = os.path.join(root, "var/lib/cvdeploy/models/yolo11n-dq/1")
    os.makedirs(repo)
    shutil.copy(model_file, os.path.join(repo, "model.onnx"))
    chroot(root, "chmod", "-R", "u=rwX,g=rX,o=", "/var/lib/cvdeploy/models/yolo11n-dq", quiet=True)
    chroot(root, "chgrp", "-R", "cvdeploy", "/var/lib/cvdeploy/models/yolo11n-dq", quiet=True)
    with open(os.path.join(root, "etc/cvdeploy/cvdeploy.env"), encoding="utf-8") as f:
        env_text = f.read()
    port = free_port()
    cmd = exec_start(unit_text, env_text, port)
    log("ExecStart as run: " + " ".join(cmd))
    server = subprocess.Popen(["chroot", "--userspec=cvdeploy:cvdeploy", root] + cmd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              cwd="/")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server, 120)
        got = detections(http_predict(url, "yolo11n-dq", image))
        same_detections(got, want, "the unit's serve command, predict over HTTP")
    finally:
        code = stop(server)
    stderr = server.stderr.read()
    expect(code == 0 and "stopped" in stderr, f"SIGTERM: drained and exited {code}")


# ---- 7. the unit under systemd --------------------------------------------------------------
def descendant_named(pid, name, seconds=30):
    """The first descendant of pid whose comm is name (the container's systemd)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        todo = [pid]
        while todo:
            current = todo.pop()
            try:
                with open(f"/proc/{current}/comm", encoding="utf-8") as f:
                    if current != pid and f.read().strip() == name:
                        return current
                for task in os.listdir(f"/proc/{current}/task"):
                    with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                        todo.extend(int(c) for c in f.read().split())
            except OSError:
                continue
        time.sleep(0.3)
    raise Fail(f"no {name} process under {pid}")


def set_env_port(root, port):
    path = os.path.join(root, "etc/cvdeploy/cvdeploy.env")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(re.sub(r"^CVDEPLOY_PORT=.*$", f"CVDEPLOY_PORT={port}", text, flags=re.M))


def check_systemd_boot(root, image, want):
    """Boots the root filesystem with systemd-nspawn: the enabled unit starts, serves, stops."""
    expect(os.path.islink(os.path.join(
        root, "etc/systemd/system/multi-user.target.wants/cvdeploy.service")),
        "postinst enabled cvdeploy.service")
    port = free_port()
    set_env_port(root, port)  # the host's network: not 8080, which may be taken
    boot = subprocess.Popen(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "-D", root,
                             "--boot", "--console=pipe"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        init = descendant_named(boot.pid, "systemd")
        inside = ["nsenter", "-t", str(init), "-m", "-u", "-i", "-p", "--"]
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, boot, 120)
        got = detections(http_predict(url, "yolo11n-dq", image))
        same_detections(got, want, "cvdeploy.service under systemd, predict over HTTP")
        show = run(inside + ["systemctl", "show", "cvdeploy", "-p", "MainPID", "-p", "User"],
                   quiet=True)
        main_pid = re.search(r"^MainPID=(\d+)$", show, re.M).group(1)
        status = run(inside + ["cat", f"/proc/{main_pid}/status"], quiet=True)
        fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
        uid = chroot(root, "id", "-u", "cvdeploy", quiet=True).strip()
        expect(fields["Uid"].split()[0] == uid and fields["NoNewPrivs"] == "1" and
               fields["Seccomp"] == "2" and int(fields["CapEff"], 16) == 0 and
               int(fields["CapBnd"], 16) == 0,
               f"the service process: uid {uid}, NoNewPrivs, seccomp filter, no capabilities")
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+ \w+)", run(
            inside + ["systemd-analyze", "security", "--no-pager", "cvdeploy.service"],
            check=False, quiet=True))
        log("systemd-analyze security (running unit): " + (score.group(1) if score else "?"))
        run(inside + ["systemctl", "stop", "cvdeploy"], quiet=True)
        show = run(inside + ["systemctl", "show", "cvdeploy", "-p", "Result", "-p",
                             "ExecMainStatus"], quiet=True)
        journal = run(inside + ["journalctl", "-u", "cvdeploy", "--no-pager"], quiet=True)
        expect("Result=success" in show and "ExecMainStatus=0" in show and
               "draining in-flight requests" in journal,
               "systemctl stop: SIGTERM, drained, exit 0, Result=success")
    finally:
        boot.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to halt
        try:
            boot.wait(timeout=60)
        except subprocess.TimeoutExpired:
            boot.kill()
            boot.wait()


# ---- 8. purge -------------------------------------------------------------------------------
def check_purge(root):
    chroot(root, "apt-get", "purge", "-y", "-q", "cvdeploy", quiet=True)
    expect(chroot(root, "getent", "passwd", "cvdeploy", check=False, quiet=True).strip() == "",
           "purge removed the cvdeploy user")
    for path in ("etc/cvdeploy", "var/log/cvdeploy", "usr/lib/cvdeploy", "usr/bin/cvdeploy"):
        expect(not os.path.exists(os.path.join(root, path)), f"purge removed /{path}")
    expect(os.path.isfile(os.path.join(root, "var/lib/cvdeploy/models/yolo11n-dq/1/model.onnx")),
           "purge kept the non-empty model repository")


def smoke(src, host_binary, model, image, max_exposure):
    """The unit's checks on the host build's binary: verify, security, syscall filter."""
    if not shutil.which("systemd-analyze"):
        print("SKIP: systemd-analyze not installed (scripts/setup-deb.sh)")
        return SKIPPED
    try:
        with open(os.path.join(src, "deploy/systemd/cvdeploy.service"), encoding="utf-8") as f:
            unit_text = f.read()
        check_unit(unit_text, host_binary, max_exposure)
        if shutil.which("strace"):
            check_syscalls(unit_text, host_binary, model, image)
        else:
            log("strace not installed: syscall filter not checked")
    except (Fail, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    log("PASS")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True, help="build directory (the host build, the .deb)")
    ap.add_argument("--deb", help="package (default: BUILD/cvdeploy_*_amd64.deb)")
    ap.add_argument("--assets", default=os.environ.get("CVDEPLOY_ASSETS"))
    ap.add_argument("--cache", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cvdeploy"))
    ap.add_argument("--keep", action="store_true", help="keep the root filesystem")
    ap.add_argument("--no-lintian", action="store_true")
    ap.add_argument("--max-exposure", type=float, default=2.0)
    ap.add_argument("--smoke", action="store_true", help="only the unit checks (CTest)")
    args = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assets = args.assets or os.path.join(src, "..", "shared", "assets")
    model = os.path.join(assets, "models", "yolo11n-dq.onnx")
    image = os.path.join(assets, "images", "bus.jpg")
    host_binary = os.path.join(os.path.abspath(args.build), "cvdeploy")
    debs = [args.deb] if args.deb else sorted(glob.glob(os.path.join(args.build,
                                                                     "cvdeploy_*_amd64.deb")))
    if args.smoke:
        return smoke(src, host_binary, model, image, args.max_exposure)
    try:
        if os.geteuid() != 0:
            raise Fail("needs root (chroot, mounts)")
        for path in (model, image, host_binary):
            if not os.path.exists(path):
                raise Fail(f"missing {path} (set --assets / build first)")
        if not debs:
            raise Fail(f"no cvdeploy_*_amd64.deb in {args.build} (make deb)")
        deb = os.path.abspath(debs[-1])
        version = run(["dpkg-deb", "-f", deb, "Version"], quiet=True).strip()
        with open(os.path.join(src, "deploy/systemd/cvdeploy.service"), encoding="utf-8") as f:
            unit_text = f.read()
        host = run([host_binary, "predict", "--model", model, "--source", image, "--json", "-"],
                   quiet=True)
        want = detections(json.loads(next(x for x in host.splitlines() if x.startswith("{"))))
        expect(len(want) >= 5, f"host build: {len(want)} detections on bus.jpg")

        check_package(deb, not args.no_lintian)
        check_syscalls(unit_text, host_binary, model, image)
        with fresh_root(rootfs_tarball(args.cache), args.keep) as (root, mounts):
            tmp = os.path.join(root, "tmp", "cvdeploy-test")
            os.makedirs(tmp)
            for path in (deb, model, image):
                shutil.copy(path, tmp)
            os.chmod(tmp, 0o755)
            chroot(root, "apt-get", "update", "-q")
            chroot(root, "apt-get", "install", "-y", "-q", "--no-install-recommends",
                   "/tmp/cvdeploy-test/" + os.path.basename(deb))
            check_installed(root, version, "/tmp/cvdeploy-test/yolo11n-dq.onnx",
                            "/tmp/cvdeploy-test/bus.jpg", want)
            check_unit(unit_text, os.path.join(root, "usr/bin/cvdeploy"), args.max_exposure)
            out = chroot(root, "systemd-analyze", "verify", "--man=no",
                         "/lib/systemd/system/cvdeploy.service", check=False, quiet=True)
            expect(out.strip() == "", "systemd-analyze verify inside the root filesystem: "
                   "no diagnostic" + ("" if not out.strip() else ":\n" + out))
            check_service_command(root, unit_text, model, image, want)
            mounts.unmount()
            check_systemd_boot(root, image, want)
            mounts.mount()
            check_purge(root)
    except (Fail, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
