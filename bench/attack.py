#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Black-box attack on `cvdeploy serve`: known-bad requests, then seeded random mutations.

    bench/attack.py [--cvdeploy build/cvdeploy] [--assets DIR] [--url http://127.0.0.1:PORT]
                    [--requests 2000] [--max-seconds 600] [--seed 1] [--batch 50]
                    [--out DIR] [--smoke]

Starts `cvdeploy serve` on 127.0.0.1 (a free port, $ASSETS/models/yolo11n-dq.onnx, short read
and idle timeouts) or attaches to --url (127.0.0.1 only; any other host is refused). Then:
 1. replays the known-bad cases of issue 12, each with its expected outcome (Exif IFD offsets
    that wrap, 100,000-deep JSON, 1e400, NaN/Inf outputs as JSON, Transfer-Encoding
    smuggling, very thin images, a slow header, too many connections from one client, an
    absolute-form target, corrupt JPEGs, NUL in a path and in JSON; attack_cases.py);
 2. sends --requests random mutations of valid requests (attack_mutations.py) over raw
    sockets: an answer must be well-formed HTTP with a status < 500 or 503, an error must be
    a JSON {"error": ...}, and a complete request must get exactly one answer;
 3. after every --batch requests checks that the server process is alive, /v2/health/live
    and /v2/health/ready answer 200, bus.jpg still gives >= 4 detections and a KServe infer
    still gives a finite [1,84,8400] output0. A dead server is a crash finding: the batch is
    saved as reproducers, the server is restarted (at most --max-restarts times) and the
    attack goes on.
Every finding keeps the raw request bytes under --out (findings/, crash-N/); the summary is
printed and written to OUT/attack_summary.json. Bounded by --requests and --max-seconds;
--smoke is the short version CTest runs (the replay cases and 200 mutations).
Exit status: 0 when nothing was found, 1 on any finding or crash, 2 when the time limit left
replay cases unrun.
"""
import array
import collections
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # leave bench/__pycache__ alone

import attacklib  # noqa: E402
import attack_cases  # noqa: E402
import attack_mutations  # noqa: E402
import benchlib  # noqa: E402
from attacklib import describe_exit, request_bytes  # noqa: E402

PER_CLIENT_FLAG = attack_cases.PER_CLIENT_FLAG
PER_CLIENT_LIMIT = 8  # the value passed to a server started here
MAX_SAVED_BYTES = 64 << 20  # per crash directory


class Abort(Exception):
    """The attack cannot go on (server down and not restartable)."""


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", name)[:80]


class Session:
    """The running attack: the server, counters, findings and case results."""

    def __init__(self, args, server, out):
        self.args, self.server, self.out = args, server, out
        self.started = time.monotonic()
        self.deadline = self.started + args.max_seconds
        self.sent = 0
        self.health_requests = 0
        self.histogram = collections.Counter()
        self.findings, self.cases = [], []
        self.crashes, self.restarts = [], 0
        self.batch = []  # (name, bytes) sent since the last health check
        self.last = None
        self.model = "yolo11n-dq"
        self.rss_before = None
        self.families = list(attack_cases.FAMILIES)
        self.mutation_families = {}
        images = os.path.join(args.assets, "images")
        with open(os.path.join(images, "bus.jpg"), "rb") as f:
            self.bus = f.read()
        with open(os.path.join(images, "zidane.jpg"), "rb") as f:
            self.zidane = f.read()

    # -- time -----------------------------------------------------------------------------------

    def time_left(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    # -- findings -------------------------------------------------------------------------------

    def save(self, directory, name, data):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, safe_name(name) + ".http")
        with open(path, "wb") as f:
            f.write(data)
        return os.path.relpath(path, self.out)

    def finding(self, kind, case, detail, data=None, reproducer=None):
        n = len(self.findings) + 1
        if data is not None and reproducer is None:
            if n <= self.args.max_saved_findings:
                reproducer = self.save(os.path.join(self.out, "findings"), f"{n:04d}-{case}", data)
            else:
                reproducer = "(not saved: --max-saved-findings reached)"
        self.findings.append({"kind": kind, "case": case, "detail": detail,
                              "reproducer": reproducer})
        print(f"  FINDING [{kind}] {case}: {detail}" + (f"  -> {reproducer}" if reproducer else ""),
              flush=True)

    def case(self, name, expected, held, detail, data=None, crashed=False):
        """Records a replay case: held True (as expected), False (a finding unless a crash
        already recorded it) or None (not applicable to this binary)."""
        state = {True: "held", False: "FAILED", None: "n/a"}[held]
        self.cases.append({"case": name, "expected": expected, "result": state, "detail": detail})
        print(f"  {state:6s} {name}: {detail}", flush=True)
        if held is False and not crashed:
            self.finding("case", name, f"expected {expected}; got {detail}", data)

    # -- sending --------------------------------------------------------------------------------

    def send(self, name, data, **kw):
        """Sends one attack request on a fresh connection. Returns (exchange, crash) where
        crash describes how the server died on this request, or None."""
        if not self.server.attached and not self.server.alive():
            self.crash(self.last[0] if self.last else "(before any request)",
                       self.last[1] if self.last else b"")
        self.sent += 1
        self.last = (name, data)
        self.batch.append((name, data))
        x = attacklib.exchange(self.server.port, data, **kw)
        self.histogram[x.outcome()] += 1
        if x.responses:
            return x, None
        down = False
        if self.server.attached:
            down = not self.server.live()
        else:
            # A killed process closes its sockets while exiting: give it a moment to be reaped.
            down = self.server.wait_exit(2.0 if x.refused else 0.15) is not None
        return x, (self.crash(name, data) if down else None)

    def crash(self, name, data):
        """The server died on request `name`: saves the batch, records the finding, restarts."""
        code = None if self.server.attached else self.server.proc.returncode
        how = "connection refused" if self.server.attached else describe_exit(code)
        k = len(self.crashes) + 1
        where = os.path.join(self.out, f"crash-{k}")
        saved, reproducer = 0, None
        for i, (n, d) in reversed(list(enumerate(self.batch))):
            if reproducer is None and n == name and d == data:
                reproducer = self.save(where, f"{i:03d}-{n}", d)  # the request it died on
            elif saved + len(d) <= MAX_SAVED_BYTES:
                self.save(where, f"{i:03d}-{n}", d)
                saved += len(d)
        if reproducer is None:
            reproducer = self.save(where, "last-" + name, data)
        tail = self.server.log_tail(600).strip().splitlines()[-3:]
        self.crashes.append({"case": name, "how": how, "stderr_tail": tail,
                             "batch_saved": os.path.relpath(where, self.out)})
        self.finding("crash", name, f"server {how} (batch of {len(self.batch)} saved in "
                     f"crash-{k}/)", reproducer=reproducer)
        self.batch = []
        self.restart(f"after crash {k}")
        return how

    def restart(self, why):
        if self.server.attached:
            raise Abort(f"the attached server is down ({why}); cannot restart it")
        if self.restarts >= self.args.max_restarts:
            raise Abort(f"--max-restarts {self.args.max_restarts} reached ({why})")
        self.restarts += 1
        self.server.stop()
        print(f"  restarting the server ({why})", flush=True)
        try:
            self.server.start()
        except SystemExit as e:  # it would not come back: stop here, with the summary
            raise Abort(f"restart failed: {e}") from None

    # -- health ---------------------------------------------------------------------------------

    def probe(self, data, timeout=60.0):
        self.health_requests += 1
        x = attacklib.exchange(self.server.port, data, timeout=timeout)
        return x.responses[0] if x.responses and not x.problem else None, x

    def health(self, label):
        """Liveness, readiness and two valid inferences; returns the problems found."""
        problems = []
        if not self.server.alive():
            self.crash(self.last[0] if self.last else label, self.last[1] if self.last else b"")
            return ["server had died"]
        host = [("Host", "127.0.0.1")]
        for path in ("/v2/health/live", "/v2/health/ready"):
            r, x = self.probe(request_bytes("GET", path, host))
            if r is None or r.status != 200:
                problems.append(f"GET {path}: {r.describe() if r else x.outcome()}")
        r, x = self.probe(request_bytes("POST", f"/v1/models/{self.model}/predict",
                                        host + [("Content-Type", "image/jpeg")], self.bus))
        doc = r.json() if r is not None and r.status == 200 else None
        dets = doc.get("detections") if isinstance(doc, dict) else None
        if not isinstance(dets, list) or len(dets) < 4:
            problems.append("predict bus.jpg: " + (r.describe() if r else x.outcome())
                            + " (want 200 with >= 4 detections)")
        problems += self.check_infer(host)
        if problems and not self.server.attached and not self.server.alive():
            self.crash(self.last[0] if self.last else label, self.last[1] if self.last else b"")
            return problems
        self.batch = []
        if problems:
            self.finding("health", label, "; ".join(problems))
            if not self.server.attached:
                self.restart(f"unhealthy {label}")
        return problems

    def check_infer(self, host):
        tensor = array.array("f", [0.5]) * (3 * 640 * 640)
        body, header_len = attacklib.kserve_binary(tensor.tobytes())
        r, x = self.probe(request_bytes("POST", f"/v2/models/{self.model}/infer",
                                        host + [("Content-Type", "application/octet-stream"),
                                                ("Inference-Header-Content-Length",
                                                 str(header_len))], body))
        if r is None or r.status != 200:
            return ["KServe infer: " + (r.describe() if r else x.outcome())]
        try:
            n = int(r.header("Inference-Header-Content-Length"))
            head = json.loads(r.body[:n])
            out = head["outputs"][0]
            values = array.array("f")
            values.frombytes(r.body[n:])
        except (TypeError, ValueError, KeyError, IndexError) as e:
            return [f"KServe infer: unreadable binary response ({e})"]
        if out.get("name") != "output0" or out.get("shape") != [1, 84, 8400] or \
                len(values) != 84 * 8400 or not all(map(math.isfinite, values)):
            return [f"KServe infer: implausible output {out.get('name')} {out.get('shape')} "
                    f"with {len(values)} values"]
        return []


# ---------------------------------------------------------------------------------------------
# Mutations


def mutation_phase(s, count):
    m_bytes = array.array("f", [0.5]) * (3 * 640 * 640)
    temps = attack_mutations.templates(
        s.model, s.bus, s.zidane, attacklib.png(160, 120),
        attacklib.kserve_zeros_json(3 * 640 * 640), attacklib.kserve_binary(m_bytes.tobytes()))
    mutator = attack_mutations.Mutator(random.Random(s.args.seed), temps)
    done = 0
    s.mutation_families = collections.defaultdict(collections.Counter)
    for i in range(count):
        if s.time_left() <= 0:
            print(f"  time limit: {done} of {count} mutations sent", flush=True)
            break
        m = mutator.next()
        name = f"m{i:05d}-{m.name}"
        x, crash = s.send(name, m.data, timeout=s.args.request_timeout, head_only=m.head_only)
        s.mutation_families[m.family]["crash" if crash else x.outcome()] += 1
        done += 1
        if not crash:
            for problem in attack_mutations.judge(m, x):
                s.finding("mutation", name, problem, m.data)
        if (i + 1) % s.args.batch == 0:
            s.health(f"after mutation {i + 1}")
    return done


# ---------------------------------------------------------------------------------------------
# Main


def parse_args():
    ap = benchlib.argument_parser(__doc__)
    ap.add_argument("--url", help="attack this running server (http://127.0.0.1:PORT only)")
    ap.add_argument("--requests", type=int, default=None, help="mutations (2000; smoke 200)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="time limit of the whole run (600; smoke 150)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50, help="health check every N mutations")
    ap.add_argument("--read-timeout", type=float, default=None,
                    help="the server's --read-timeout (2 when started here; 30 with --url)")
    ap.add_argument("--request-timeout", type=float, default=30.0,
                    help="seconds to wait for one answer")
    ap.add_argument("--max-restarts", type=int, default=20)
    ap.add_argument("--max-saved-findings", type=int, default=200)
    ap.add_argument("--max-connections-per-client", type=int, default=None,
                    help=f"with --url: the server's limit (the case is skipped without it); "
                         f"started here: {PER_CLIENT_LIMIT} when the binary knows the flag")
    ap.add_argument("--out", default=None, help="reproducers and attack_summary.json")
    ap.add_argument("--smoke", action="store_true", help="replay cases + 200 mutations")
    args = ap.parse_args()
    if args.requests is None:
        args.requests = 200 if args.smoke else 2000
    if args.max_seconds is None:
        args.max_seconds = 150.0 if args.smoke else 600.0
    if args.read_timeout is None:
        args.read_timeout = 30.0 if args.url else 2.0
    if args.requests < 0 or args.max_seconds <= 0 or args.batch < 1:
        ap.error("--requests >= 0, --max-seconds > 0 and --batch >= 1")
    if args.url:
        attacklib.loopback_port(args.url)
    if args.out is None:
        args.out = os.path.join(benchlib.REPO_ROOT, "runs", "attack")
    return args


def prepare_out(out):
    """Creates OUT and removes what an earlier run of this script left there."""
    os.makedirs(out, exist_ok=True)
    for entry in os.listdir(out):
        path = os.path.join(out, entry)
        if entry == "findings" or re.fullmatch(r"crash-\d+", entry):
            shutil.rmtree(path, ignore_errors=True)
        elif re.fullmatch(r"serve-\d+\.err|access\.log|attack_summary\.json", entry):
            os.remove(path)


def make_server(args):
    """The server under test and whether it enforces a per-client connection limit."""
    if args.url:
        return attacklib.Server(url=args.url), args.max_connections_per_client
    if not os.access(args.cvdeploy, os.X_OK):
        raise SystemExit(f"{args.cvdeploy} is not an executable (build it, or pass --cvdeploy)")
    model = os.path.join(args.assets, "models", "yolo11n-dq.onnx")
    if not os.path.isfile(model):
        raise SystemExit(f"{model} not found (pass --assets)")
    help_text = subprocess.run([args.cvdeploy, "serve", "--help"], capture_output=True,
                               text=True).stdout
    serve_args = ["--model", model, "--read-timeout", str(args.read_timeout),
                  "--idle-timeout", str(4 * args.read_timeout),
                  "--access-log", os.path.join(args.out, "access.log")]
    limit = None
    if PER_CLIENT_FLAG in help_text:
        limit = PER_CLIENT_LIMIT
        serve_args += [PER_CLIENT_FLAG, str(limit)]
    return attacklib.Server(args.cvdeploy, serve_args, args.out), limit


def summarize(s, mutations_sent, aborted):
    not_run = [c["case"] for c in s.cases if c["result"] == "not run"]
    summary = {
        "target": s.args.url or f"{s.args.cvdeploy} serve (started here)",
        "seed": s.args.seed, "smoke": s.args.smoke,
        "elapsed_s": round(s.elapsed(), 1),
        "requests_sent": s.sent, "mutations_sent": mutations_sent,
        "health_requests": s.health_requests,
        "status_histogram": dict(sorted(s.histogram.items())),
        "mutations_by_family": {k: dict(sorted(v.items()))
                                for k, v in sorted(s.mutation_families.items())},
        "cases": s.cases,
        "cases_held": sum(c["result"] == "held" for c in s.cases),
        "cases_failed": sum(c["result"] == "FAILED" for c in s.cases),
        "cases_not_applicable": sum(c["result"] == "n/a" for c in s.cases),
        "cases_not_run": not_run,
        "findings": s.findings, "crashes": len(s.crashes), "crash_details": s.crashes,
        "restarts": s.restarts, "aborted": aborted,
        "rss_mb": {"before": s.rss_before, "after": s.server.rss_mb(),
                   "same_process": s.restarts == 0},
    }
    with open(os.path.join(s.out, "attack_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print("\n== attack summary ==")
    print(f"target: {summary['target']}  seed {s.args.seed}  elapsed {summary['elapsed_s']} s")
    print(f"requests sent: {s.sent} ({mutations_sent} mutations), health-check requests: "
          f"{s.health_requests}")
    print("status histogram: " + ", ".join(f"{k}: {v}" for k, v in
                                             summary["status_histogram"].items()))
    for family, hist in summary["mutations_by_family"].items():
        print(f"  mutations {family:15s} " + ", ".join(f"{k}: {v}" for k, v in hist.items()))
    print(f"cases: {summary['cases_held']} held, {summary['cases_failed']} failed, "
          f"{summary['cases_not_applicable']} not applicable, {len(not_run)} not run")
    for c in s.cases:
        what = c["detail"] if c["result"] == "not run" else f"expected {c['expected']}"
        print(f"  {c['result']:7s} {c['case']:28s} {what}")
    print(f"findings: {len(s.findings)}, crashes: {len(s.crashes)}, restarts: {s.restarts}"
          + (f", aborted: {aborted}" if aborted else ""))
    for f_ in s.findings[:40]:
        print(f"  [{f_['kind']}] {f_['case']}: {f_['detail'][:160]}"
              + (f" -> {f_['reproducer']}" if f_["reproducer"] else ""))
    if len(s.findings) > 40:
        print(f"  ... {len(s.findings) - 40} more in attack_summary.json")
    rss = summary["rss_mb"]
    if s.server.attached:
        print("server RSS: n/a (attached to a server this script did not start)")
    else:
        print(f"server RSS: before {rss['before']} MB, after {rss['after']} MB"
              + ("" if rss["same_process"] else " (not the same process: it was restarted)"))
    print(f"summary: {os.path.join(s.out, 'attack_summary.json')}")
    if s.findings or s.crashes:
        return 1
    return 2 if not_run or aborted else 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    args.out = os.path.abspath(args.out)
    broken = attack_mutations.self_test()
    if broken:
        raise SystemExit("the response checks themselves are broken: " + ", ".join(broken))
    prepare_out(args.out)
    server, per_client = make_server(args)
    signal.signal(signal.SIGTERM, _interrupt)
    s = Session(args, server, args.out)
    s.per_client_supported, s.per_client_limit = per_client is not None, per_client
    mutations_sent, aborted = 0, None
    try:
        server.start()
        s.rss_before = server.rss_mb()
        print(f"attacking 127.0.0.1:{server.port} (deadline {args.max_seconds:.0f} s, "
              f"{args.requests} mutations, seed {args.seed})", flush=True)
        print("== replay cases ==", flush=True)
        try:
            while s.families and s.time_left() > 0:
                family = s.families[0]
                family(s)
                s.families.pop(0)
                s.health(f"after {family.__name__}")
            print(f"== {args.requests} mutations (seed {args.seed}) ==", flush=True)
            mutations_sent = mutation_phase(s, args.requests)
            s.health("final")
        except Abort as e:
            aborted = str(e)
            print(f"  ABORT: {e}", flush=True)
        for family in s.families:  # an aborted family may have recorded some of its cases
            s.cases.append({"case": family.__name__, "expected": "-", "result": "not run",
                            "detail": "aborted" if aborted else "time limit"})
        return summarize(s, mutations_sent, aborted)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
