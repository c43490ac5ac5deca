#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`cvdeploy predict` on live sources, against fixtures it starts on 127.0.0.1
(stream_fixtures.py): a real RTSP server (gst-rtsp-server, H.264), MJPEG over HTTP, a server
that never answers. Each case runs a few seconds of stream.

  stream_sources_test.py --cvdeploy BIN --only http   MJPEG, reconnect, timeout, .streams,
                                                      SIGINT, dropped frames, usage errors
  stream_sources_test.py --cvdeploy BIN --only rtsp   RTSP (exit 77 when gst-rtsp-server or
                                                      x264enc is missing: setup-streams.sh)
"""
import argparse
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ASSETS = os.environ.get("CVDEPLOY_ASSETS", os.path.join(ROOT, "..", "shared", "assets"))
MODEL = os.path.join(ASSETS, "models", "yolo11n-dq.onnx")
JPEG = os.path.join(ASSETS, "images", "bus.jpg")
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
CVDEPLOY = None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Fixture:
    """A stream_fixtures.py server; stopped when the test ends."""

    def __init__(self, kind, *extra):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, os.path.join(HERE, "stream_fixtures.py"), kind, str(self.port),
             "--jpeg", JPEG, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"fixture {kind} did not start: {line} {self.proc.stderr.read()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def predict(*args, timeout=60):
    t0 = time.monotonic()
    run = subprocess.run([CVDEPLOY, "predict", "--model", MODEL, "--threads", "1", *args],
                         capture_output=True, text=True, timeout=timeout)
    run.elapsed = time.monotonic() - t0
    return run


def json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


def summary(text, source):
    """The end-of-run line of one stream."""
    for line in text.splitlines():
        if line.startswith(source + ":"):
            return line
    raise AssertionError(f"no summary line for {source} in:\n{text}")


def count(pattern, line):
    m = re.search(pattern, line)
    if not m:
        raise AssertionError(f"{pattern!r} not in {line!r}")
    return int(m.group(1))


class HttpStreams(unittest.TestCase):
    def setUp(self):
        self.fixtures = []
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        for f in self.fixtures:
            f.stop()
        self.tmp.cleanup()

    def fixture(self, *args):
        f = Fixture(*args)
        self.fixtures.append(f)
        return f

    def test_mjpeg_results_as_json_lines_and_annotated_video(self):
        f = self.fixture("mjpeg", "--frames", "12", "--fps", "6", "--connections", "1")
        url = f"http://127.0.0.1:{f.port}/cam.mjpg"
        save = os.path.join(self.tmp.name, "out")
        run = predict("--source", url, "--json", "-", "--reconnect", "0", "--buffer",
                      "--save-dir", save)
        self.assertEqual(run.returncode, 0, run.stderr)
        lines = json_lines(run.stdout)
        # --buffer keeps every frame: all 12 arrive, in order, with the bus's detections.
        self.assertEqual([l["frame"] for l in lines], list(range(12)))
        for l in lines:
            self.assertEqual(l["source"], url)
            self.assertEqual(l["stream"], 0)
            self.assertEqual((l["width"], l["height"]), (810, 1080))
            self.assertGreater(l["latency_ms"], 0)
            self.assertIn("bus", [d["class_name"] for d in l["detections"]])
        line = summary(run.stderr, url)  # JSON on stdout: the summary goes to stderr
        self.assertEqual(count(r"(\d+) frames read", line), 12)
        self.assertEqual(count(r"(\d+) processed", line), 12)
        self.assertEqual(count(r"(\d+) dropped", line), 0)
        self.assertIn("; ended", line)
        video = os.path.join(save, f"127.0.0.1_{f.port}_cam.mjpg.mp4")
        self.assertTrue(os.path.getsize(video) > 1000, os.listdir(save))

    def test_slow_inference_drops_frames_instead_of_queueing(self):
        # 30 FPS against ~50-100 ms per frame on one thread: the newest-frame buffer drops.
        f = self.fixture("mjpeg", "--frames", "60", "--fps", "30", "--connections", "1")
        url = f"http://127.0.0.1:{f.port}/fast.mjpg"
        run = predict("--source", url, "--reconnect", "0", "--workers", "1")
        self.assertEqual(run.returncode, 0, run.stderr)
        line = summary(run.stdout, url)
        read, processed = count(r"(\d+) frames read", line), count(r"(\d+) processed", line)
        dropped = count(r"(\d+) dropped", line)
        self.assertEqual(read, 60, line)
        self.assertGreater(dropped, 0, line)
        # Every frame is either processed or counted as dropped: none waits in a queue.
        self.assertEqual(processed + dropped, read, line)

    def test_stream_that_stops_and_comes_back_is_reconnected(self):
        f = self.fixture("mjpeg", "--frames", "8", "--fps", "10", "--connections", "2")
        url = f"http://127.0.0.1:{f.port}/flaky.mjpg"
        run = predict("--source", url, "--json", "-", "--buffer", "--reconnect", "2",
                      "--stream-timeout", "3")
        self.assertEqual(run.returncode, 0, run.stderr)
        line = summary(run.stderr, url)
        self.assertEqual(count(r"(\d+) reconnect", line), 1, line)
        self.assertEqual(count(r"(\d+) frames read", line), 16, line)
        self.assertIn("lost:", line)  # the third connection is refused
        self.assertEqual(len(json_lines(run.stdout)), 16)

    def test_vid_stride_keeps_every_nth_frame_numbered_as_in_a_video(self):
        f = self.fixture("mjpeg", "--frames", "8", "--fps", "10", "--connections", "1")
        url = f"http://127.0.0.1:{f.port}/stride.mjpg"
        run = predict("--source", url, "--json", "-", "--buffer", "--reconnect", "0",
                      "--vid-stride", "3")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual([l["frame"] for l in json_lines(run.stdout)], [0, 3, 6])
        self.assertEqual(count(r"(\d+) frames read", summary(run.stderr, url)), 3)

    def test_url_that_never_answers_times_out_with_exit_3(self):
        f = self.fixture("silent")
        url = f"http://127.0.0.1:{f.port}/never.mjpg"
        run = predict("--source", url, "--stream-timeout", "2", timeout=30)
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertLess(run.elapsed, 15)
        err = run.stderr.strip().splitlines()
        self.assertEqual(len(err), 1, run.stderr)
        self.assertIn(url, err[0])
        self.assertIn("no answer within 2 s", err[0])
        rtsp = f"rtsp://127.0.0.1:{f.port}/never"
        run = predict("--source", rtsp, "--stream-timeout", "2", timeout=30)
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn(rtsp + ": cannot open stream", run.stderr)

    def test_refused_url_and_missing_webcam_are_one_line_exit_3(self):
        url = f"http://127.0.0.1:{free_port()}/nothing.mjpg"
        out = os.path.join(self.tmp.name, "never.jsonl")
        run = predict("--source", url, "--stream-timeout", "2", "--json", out)
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertFalse(os.path.exists(out))  # no empty output left behind
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn(url + ": cannot open stream", run.stderr)
        if not os.path.exists("/dev/video9"):
            run = predict("--source", "9")
            self.assertEqual(run.returncode, 3, run.stderr)
            self.assertIn("9: cannot open stream: no such webcam (/dev/video9 not found)",
                          run.stderr)
            self.assertNotIn("No such file or directory", run.stderr)

    def test_streams_file_with_two_sources(self):
        a = self.fixture("mjpeg", "--frames", "6", "--fps", "6", "--connections", "1")
        b = self.fixture("mjpeg", "--frames", "9", "--fps", "6", "--connections", "1")
        urls = [f"http://127.0.0.1:{a.port}/a.mjpg", f"http://127.0.0.1:{b.port}/b.mjpg"]
        listing = os.path.join(self.tmp.name, "cams.streams")
        with open(listing, "w") as out:
            out.write(f"# two cameras\n{urls[0]}\n\n  {urls[1]}  \n")
        run = predict("--source", listing, "--json", "-", "--buffer", "--reconnect", "0")
        self.assertEqual(run.returncode, 0, run.stderr)
        lines = json_lines(run.stdout)
        for i, (url, n) in enumerate(zip(urls, (6, 9))):
            mine = [l for l in lines if l["source"] == url]
            self.assertEqual([l["frame"] for l in mine], list(range(n)), url)
            self.assertTrue(all(l["stream"] == i for l in mine))
            self.assertEqual(count(r"(\d+) processed", summary(run.stderr, url)), n)

    def test_sigint_ends_cleanly_with_the_summary(self):
        f = self.fixture("mjpeg", "--fps", "10")  # endless
        url = f"http://127.0.0.1:{f.port}/live.mjpg"
        out = os.path.join(self.tmp.name, "live.jsonl")
        proc = subprocess.Popen([CVDEPLOY, "predict", "--model", MODEL, "--threads", "1",
                                 "--source", url, "--json", out],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        # --json FILE is written line by line: it can be followed while the stream runs.
        while time.monotonic() < deadline:
            if os.path.exists(out) and open(out).read().count("\n") >= 3:
                break
            time.sleep(0.1)
        else:
            proc.kill()
            self.fail("no results written while the stream ran")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
        self.assertEqual(proc.returncode, 0, stderr)
        line = summary(stdout, url)
        self.assertIn("; interrupted", line)
        self.assertRegex(stdout, r"interrupted: \d+ frames processed in")
        written = [json.loads(l) for l in open(out)]
        self.assertEqual(len(written), count(r"(\d+) processed", line))

    def test_progress_on_a_tty_counts_frames_and_is_cleared_before_result_lines(self):
        f = self.fixture("mjpeg", "--frames", "6", "--fps", "6", "--connections", "1")
        url = f"http://127.0.0.1:{f.port}/tty.mjpg"
        save = os.path.join(self.tmp.name, "tty")
        out = run_on_tty(["--source", url, "--buffer", "--reconnect", "0", "--save-dir", save])
        self.assertIn("predict 6 ", out)  # the bar counted every frame
        check_bar_never_shares_a_line(self, out, url + " frame")
        # A video file: the bar knows the frame count ([###] 6/6), one result line per video.
        video = os.path.join(save, f"127.0.0.1_{f.port}_tty.mjpg.mp4")
        out = run_on_tty(["--source", video])
        self.assertRegex(out, r"predict \[#+\] 6/6 ")
        check_bar_never_shares_a_line(self, out, video + ": 6 frames read")
        quiet = run_on_tty(["--source", video, "--quiet"])
        self.assertNotIn("predict [", quiet)
        self.assertIn(video + ": 6 frames read", quiet)  # the summary stays

    def test_live_sources_and_files_cannot_be_mixed(self):
        run = predict("--source", "0", JPEG)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("cannot be mixed with files", run.stderr)
        run = predict("--source", os.path.join(self.tmp.name, "none.streams"))
        self.assertEqual(run.returncode, 3, run.stderr)
        self.assertIn("none.streams: No such file", run.stderr)


def run_on_tty(args):
    """predict with stdout and stderr on one pseudo-terminal; what the terminal received."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([CVDEPLOY, "predict", "--model", MODEL, "--threads", "1", *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, data
    return data.decode(errors="replace").replace("\r\n", "\n")


def check_bar_never_shares_a_line(test, out, result_prefix):
    """Every result line starts on a clean line: what stays visible of each terminal line
    (after its last carriage return and erase) is either a bar or a result, never both."""
    results = 0
    for line in out.split("\n"):
        visible = line.split("\r")[-1].replace("\x1b[K", "")
        if result_prefix in visible:
            results += 1
            test.assertTrue(visible.startswith(result_prefix), repr(line))
        test.assertFalse("predict " in visible and result_prefix in visible, repr(line))
    test.assertGreater(results, 0, out)


class RtspStream(unittest.TestCase):
    def test_rtsp_h264_read_through_ffmpeg_until_sigint(self):
        f = Fixture("rtsp", "--fps", "15")
        try:
            url = f"rtsp://127.0.0.1:{f.port}/test"
            proc = subprocess.Popen([CVDEPLOY, "predict", "--model", MODEL, "--threads", "1",
                                     "--source", url, "--json", "-", "--stream-timeout", "10"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            lines = []
            deadline = time.monotonic() + 40
            while len(lines) < 10 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(json.loads(line))
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=20)
            self.assertEqual(len(lines), 10, stderr)
            self.assertEqual(proc.returncode, 0, stderr)
            frames = [l["frame"] for l in lines]
            self.assertEqual(frames, sorted(frames))  # in order, newest first never
            self.assertEqual((lines[0]["width"], lines[0]["height"]), (320, 240))
            line = summary(stderr, url)
            self.assertIn("; interrupted", line)
            self.assertRegex(line, r"stream 15\.0 FPS")
        finally:
            f.stop()


def rtsp_available():
    probe = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
             "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
             "import sys; sys.exit(0 if Gst.ElementFactory.find('x264enc') and "
             "Gst.ElementFactory.find('rtph264pay') else 1)")
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


def main():
    global CVDEPLOY
    p = argparse.ArgumentParser()
    p.add_argument("--cvdeploy", required=True)
    p.add_argument("--only", choices=["http", "rtsp"], required=True)
    args, rest = p.parse_known_args()
    CVDEPLOY = args.cvdeploy
    if args.only == "rtsp" and not rtsp_available():
        print("SKIP: gst-rtsp-server or x264enc missing (scripts/setup-streams.sh)")
        return 77
    case = HttpStreams if args.only == "http" else RtspStream
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    if rest:
        suite = unittest.TestSuite(t for t in suite if any(r in t.id() for r in rest))
    ok = unittest.TextTestRunner(verbosity=2).run(suite).wasSuccessful()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
