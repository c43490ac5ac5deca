#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""CTest install_package: the installed tree works for someone who only has the install.

1. The README's library section shows examples/library/{main.cpp,CMakeLists.txt} verbatim.
2. `cmake --install BUILD --prefix P` into a fresh P.
3. P/bin/cvdeploy has RUNPATH $ORIGIN/../lib, nothing into .deps, and runs (--version, info).
4. examples/library is configured and built as a separate CMake project against P
   (find_package(cvdeploy), Ninja, the build's compiler) and detects the bus and persons of
   bus.jpg with yolo11n-dq.
5. The same main.cpp built through `pkg-config --cflags --libs cvdeploy` does the same.
6. The security and server libraries: a program using cvdeploy/security/crypto.h (SHA-256,
   argon2id through libsodium) and cvdeploy/server.h (RunServer linked in: Beast, spdlog,
   OpenSSL) builds against cvdeploy::server + cvdeploy::security and through pkg-config, and
   prints the known SHA-256 of "abc".

Usage: install_package_test.py --source-dir SRC --build-dir BUILD --cxx CXX --work DIR
                               [--flags "FLAGS"]
FLAGS: the build's sanitizer flags, which a consumer of a sanitized static library needs too.
Assets: $CVDEPLOY_ASSETS, else SRC/../shared/assets.
"""
import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

EXAMPLE_FILES = ["examples/library/main.cpp", "examples/library/CMakeLists.txt"]


def run(cmd, **kwargs):
    print("+ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)
    if done.returncode != 0:
        print(done.stdout)
        raise SystemExit(f"FAIL: exit {done.returncode}: {cmd[0]}")
    return done.stdout


def readme_blocks(readme):
    """{path: code} for every fenced block preceded by a `<!-- file: PATH -->` line."""
    blocks = {}
    pattern = re.compile(r"^<!-- file: (\S+) -->\n```[a-z]*\n(.*?)^```$", re.M | re.S)
    for match in pattern.finditer(readme):
        blocks[match.group(1)] = match.group(2)
    return blocks


def check_readme(source_dir):
    with open(os.path.join(source_dir, "README.md"), encoding="utf-8") as f:
        blocks = readme_blocks(f.read())
    for path in EXAMPLE_FILES:
        with open(os.path.join(source_dir, path), encoding="utf-8") as f:
            text = f.read()
        if path not in blocks:
            raise SystemExit(f"FAIL: README.md has no block marked <!-- file: {path} -->")
        if blocks[path] != text:
            raise SystemExit(f"FAIL: README.md's block for {path} differs from the file")
    print("README shows the example files verbatim")


def check_detections(output, what):
    """The README's bus.jpg: 1 bus, 4 person (yolo11n-dq, conf 0.25)."""
    classes = [line.split()[0] for line in output.splitlines() if line.strip()]
    if classes.count("bus") != 1 or classes.count("person") != 4:
        raise SystemExit(f"FAIL: {what}: expected 1 bus and 4 person, got:\n{output}")
    for line in output.splitlines():
        fields = line.split()
        if len(fields) != 6 or not 0.25 <= float(fields[1]) <= 1.0:
            raise SystemExit(f"FAIL: {what}: malformed line {line!r}")
    print(f"{what}: 1 bus, 4 person")


# Uses the security and server libraries; RunServer is referenced (never called) so that the
# whole server, with its Boost.Beast, spdlog and OpenSSL dependencies, is linked.
SECURITY_SERVER_MAIN = r"""// SPDX-License-Identifier: Apache-2.0
#include <cstdio>
#include <string>

#include <cvdeploy/security/crypto.h>
#include <cvdeploy/server.h>

int main(int argc, char** argv) {
  namespace security = cvdeploy::security;
  if (argc > 1 && std::string(argv[1]) == "serve") {
    cvdeploy::server::ServerOptions options;
    return cvdeploy::server::RunServer(options, [](const cvdeploy::Status&) { return 4; });
  }
  const std::string hash = security::HashPassword("correct horse");
  const bool verified = security::VerifyPassword(hash, "correct horse") &&
                        !security::VerifyPassword(hash, "wrong horse");
  std::printf("%s %s %s\n", security::HexEncode(security::Sha256("abc")).c_str(),
              verified ? "argon2id-ok" : "argon2id-FAILED",
              cvdeploy::server::IsLoopbackHost("127.0.0.1") ? "loopback-ok" : "loopback-FAILED");
  return 0;
}
"""
SECURITY_SERVER_CMAKE = """# SPDX-License-Identifier: Apache-2.0
cmake_minimum_required(VERSION 3.22)
project(cvdeploy_server_consumer LANGUAGES CXX)
find_package(cvdeploy REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE cvdeploy::server cvdeploy::security)
"""
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def check_security_server(output, what):
    if output.split() != [SHA256_ABC, "argon2id-ok", "loopback-ok"]:
        raise SystemExit(f"FAIL: {what}: unexpected output {output!r}")
    print(f"{what}: SHA-256, argon2id and IsLoopbackHost work")


def build_security_server(work, prefix, args):
    """Step 6: the CMake targets cvdeploy::server/security, then pkg-config."""
    project = os.path.join(work, "server-consumer")
    os.makedirs(project)
    for name, text in (("main.cpp", SECURITY_SERVER_MAIN),
                       ("CMakeLists.txt", SECURITY_SERVER_CMAKE)):
        with open(os.path.join(project, name), "w", encoding="utf-8") as f:
            f.write(text)
    app_build = os.path.join(work, "server-cmake")
    run(["cmake", "-S", project, "-B", app_build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_CXX_COMPILER={args.cxx}", f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DCMAKE_CXX_FLAGS={args.flags}", f"-DCMAKE_EXE_LINKER_FLAGS={args.flags}"])
    run(["cmake", "--build", app_build])
    check_security_server(run([os.path.join(app_build, "app")]), "find_package server/security")
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "cvdeploy"], env=env).split()
    app = os.path.join(work, "server-pkgconfig")
    run([args.cxx, "-std=c++20", "-O2", os.path.join(project, "main.cpp"), "-o", app] +
        args.flags.split() + flags)
    check_security_server(run([app]), "pkg-config server/security")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--cxx", required=True, help="the compiler the build used")
    ap.add_argument("--work", required=True, help="scratch directory (recreated)")
    ap.add_argument("--flags", default="", help="extra compile and link flags (sanitizers)")
    args = ap.parse_args()
    source_dir = os.path.abspath(args.source_dir)
    assets = os.environ.get("CVDEPLOY_ASSETS") or os.path.join(source_dir, "..", "shared", "assets")
    model = os.path.join(assets, "models", "yolo11n-dq.onnx")
    image = os.path.join(assets, "images", "bus.jpg")
    for path in (model, image):
        if not os.path.isfile(path):
            raise SystemExit(f"FAIL: sample asset missing: {path} (set CVDEPLOY_ASSETS)")

    check_readme(source_dir)

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    prefix = os.path.join(work, "prefix")
    run(["cmake", "--install", args.build_dir, "--prefix", prefix])

    # The installed binary: ONNX Runtime beside it, no path into a build machine's .deps.
    binary = os.path.join(prefix, "bin", "cvdeploy")
    dynamic = run(["readelf", "-d", binary])
    paths = [line for line in dynamic.splitlines() if re.search(r"R(UN)?PATH", line)]
    if not paths or any(".deps" in line for line in paths) or not any(
            "$ORIGIN/../lib" in line for line in paths):
        raise SystemExit("FAIL: installed cvdeploy's RPATH/RUNPATH: " + repr(paths))
    if not os.path.exists(os.path.join(prefix, "lib", "libonnxruntime.so.1")):
        raise SystemExit("FAIL: libonnxruntime.so.1 not installed into PREFIX/lib")
    version = run([binary, "--version"])
    if not version.startswith("cvdeploy "):
        raise SystemExit(f"FAIL: --version printed {version!r}")
    info = run([binary, "info", model])
    if not re.search(r"^task\s+detect$", info, re.M):
        raise SystemExit(f"FAIL: installed cvdeploy info:\n{info}")
    print("installed cvdeploy: RUNPATH $ORIGIN/../lib, --version and info work")

    # The README's CMake project, exactly as shown there.
    example = os.path.join(source_dir, "examples", "library")
    app_build = os.path.join(work, "app-cmake")
    run(["cmake", "-S", example, "-B", app_build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_CXX_COMPILER={args.cxx}", f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DCMAKE_CXX_FLAGS={args.flags}", f"-DCMAKE_EXE_LINKER_FLAGS={args.flags}"])
    run(["cmake", "--build", app_build])
    check_detections(run([os.path.join(app_build, "app"), model, image]), "find_package example")

    # The pkg-config alternative.
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "cvdeploy"], env=env).split()
    app = os.path.join(work, "app-pkgconfig")
    run([args.cxx, "-std=c++20", "-O2", os.path.join(example, "main.cpp"), "-o", app] +
        args.flags.split() + flags)
    check_detections(run([app, model, image]), "pkg-config example")

    for header in ("security/crypto.h", "security/secret_file.h", "server.h"):
        if not os.path.isfile(os.path.join(prefix, "include", "cvdeploy", header)):
            raise SystemExit(f"FAIL: PREFIX/include/cvdeploy/{header} not installed")
    build_security_server(work, prefix, args)
    print("PASS")


if __name__ == "__main__":
    sys.exit(main())
