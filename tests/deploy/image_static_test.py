#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Static checks of the container image and edge bundle definitions (CTest deploy_image_static).

The image build (make image) and its end-to-end test (make test-image) take far longer than a
CTest may, and so do the edge cross build and its qemu run; this test checks in a second what
those slow runs rely on, so that an edit that breaks it fails in CI:

- Dockerfile: the final stage is `runtime`; it runs as uid 10001, STOPSIGNAL SIGTERM, a
  HEALTHCHECK through `cvdeploy health`, VOLUME /models, EXPOSE 8080, JSON logs, the OCI labels;
  it takes OpenCV from the `opencv` stage and installs none of Debian's libopencv packages (they
  bring GDAL, FFmpeg and GStreamer: 453 MB instead of the 250 MB target), and checks `ldd -r`.
- scripts/image-opencv.sh builds exactly the OpenCV modules cmake/Dependencies.cmake links,
  with FFmpeg, GStreamer and GDAL off.
- The edge bundle's layout: cmake/Install.cmake has the `cli` and `onnxruntime` components
  scripts/edge-bundle.sh installs, and the binary's install RUNPATH is $ORIGIN/../lib.
- scripts/test_edge.py's detection comparison passes its self-test.

Each checker must also reject mutated copies (a check that cannot fail is no check).
Exit 0 when every check passes, 1 otherwise.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import test_edge  # noqa: E402  (scripts/test_edge.py: the comparison's self-test)


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def stages(dockerfile):
    """{stage name: its text}, in order; the last one is the image."""
    parts = re.split(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", dockerfile, flags=re.M | re.I)
    return dict(zip(parts[1::2], parts[2::2]))


def check_dockerfile(text):
    problems = []
    found = stages(text)
    if not found or list(found)[-1] != "runtime":
        return [f"the last stage is {list(found)[-1:]}, expected runtime"]
    if "opencv" not in found:
        problems.append("no opencv stage")
    runtime = found["runtime"]
    required = {
        "non-root user": r"^USER 10001:10001$",
        "STOPSIGNAL SIGTERM": r"^STOPSIGNAL SIGTERM$",
        "HEALTHCHECK through cvdeploy health": r"^HEALTHCHECK .*\n?.*\"cvdeploy\", \"health\"",
        "model volume": r'^VOLUME \["/models"\]$',
        "port 8080": r"^EXPOSE 8080$",
        "JSON logs": r"CVDEPLOY_LOG_FORMAT=json",
        "OpenCV from the opencv stage": r"^COPY --from=opencv ",
        "ldd -r check": r"ldd -r ",
        "entrypoint": r'^ENTRYPOINT \["cvdeploy", "serve"\]$',
    }
    for what, pattern in required.items():
        if not re.search(pattern, runtime, flags=re.M):
            problems.append(f"runtime stage: {what} missing")
    for label in ("version", "revision", "source"):
        if f"org.opencontainers.image.{label}=" not in runtime:
            problems.append(f"runtime stage: OCI label {label} missing")
    if re.search(r"\blibopencv-", runtime):
        problems.append("runtime stage installs Debian's libopencv packages (GDAL/FFmpeg closure)")
    return problems


def linked_opencv_modules(dependencies_cmake):
    m = re.search(r"foreach\(module ([a-z ]+)\)\s*\n\s*find_library\(OPENCV_", dependencies_cmake)
    return set(m.group(1).split()) if m else set()


def check_opencv_script(script, modules):
    problems = []
    m = re.search(r"-DBUILD_LIST=([a-z,]+)", script)
    built = set(m.group(1).split(",")) if m else set()
    if not modules:
        problems.append("cannot read the linked OpenCV modules from cmake/Dependencies.cmake")
    elif built != modules:
        problems.append(f"image-opencv.sh builds {sorted(built)}, the build links {sorted(modules)}")
    for option in ("WITH_FFMPEG", "WITH_GSTREAMER", "WITH_GDAL"):
        if f"-D{option}=OFF" not in script:
            problems.append(f"image-opencv.sh: {option} is not OFF")
    return problems


def check_bundle_layout(install_cmake, bundle_script):
    problems = []
    m = re.search(r"^for component in ([a-z ]+);", bundle_script, flags=re.M)
    components = m.group(1).split() if m else []
    if sorted(components) != ["cli", "onnxruntime"]:
        problems.append(f"edge-bundle.sh installs components {components}, expected cli onnxruntime")
    for name in components:
        if f"COMPONENT {name}" not in install_cmake:
            problems.append(f"edge-bundle.sh installs component {name}, Install.cmake has none")
    if 'INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"' not in install_cmake:
        problems.append("the installed binary's RUNPATH is not $ORIGIN/../lib")
    return problems


def mutations(dockerfile, script, modules, install_cmake, bundle_script):
    """(name, problems of a broken copy): every one must be non-empty."""
    yield "USER removed", check_dockerfile(dockerfile.replace("USER 10001:10001", "USER root"))
    yield "Debian OpenCV in runtime", check_dockerfile(
        dockerfile.replace("libonnx1 ", "libopencv-imgcodecs406 libonnx1 "))
    yield "STOPSIGNAL changed", check_dockerfile(dockerfile.replace("STOPSIGNAL SIGTERM", "STOPSIGNAL SIGKILL"))
    yield "no healthcheck", check_dockerfile(dockerfile.replace("HEALTHCHECK", "# HEALTHCHECK"))
    yield "runtime not last", check_dockerfile(dockerfile + "\nFROM runtime AS debug\n")
    yield "videoio not built", check_opencv_script(script.replace(",videoio", ""), modules)
    yield "FFmpeg on", check_opencv_script(script.replace("-DWITH_FFMPEG=OFF", "-DWITH_FFMPEG=ON"), modules)
    yield "bundle without ONNX Runtime", check_bundle_layout(
        install_cmake, bundle_script.replace("cli onnxruntime;", "cli;"))
    yield "absolute RUNPATH", check_bundle_layout(
        install_cmake.replace('"$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"', '"/opt/lib"'), bundle_script)


def main():
    dockerfile = read("Dockerfile")
    script = read("scripts/image-opencv.sh")
    modules = linked_opencv_modules(read("cmake/Dependencies.cmake"))
    install_cmake = read("cmake/Install.cmake")
    bundle_script = read("scripts/edge-bundle.sh")
    failures = 0
    for what, problems in (("Dockerfile", check_dockerfile(dockerfile)),
                           ("image-opencv.sh", check_opencv_script(script, modules)),
                           ("edge bundle", check_bundle_layout(install_cmake, bundle_script))):
        for problem in problems:
            print(f"FAIL {what}: {problem}")
        failures += len(problems)
        print(f"{'PASS' if not problems else 'FAIL'} {what}")
    unrejected = [name for name, problems in
                  mutations(dockerfile, script, modules, install_cmake, bundle_script) if not problems]
    for name in unrejected:
        print(f"FAIL mutation not rejected: {name}")
    print("FAIL" if unrejected else "PASS", "every mutated copy rejected")
    failures += len(unrejected)
    if test_edge.self_test() != 0:
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
