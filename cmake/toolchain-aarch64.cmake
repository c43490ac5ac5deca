# SPDX-License-Identifier: Apache-2.0
# Cross-compiles cvdeploy for aarch64 (arm64) Linux with Debian's cross toolchain
# (g++-aarch64-linux-gnu) against the arm64 sysroot and ONNX Runtime arm64 library that
# scripts/setup-edge.sh prepares. Used by `make edge`:
#   cmake -S . -B build-edge -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
# CVDEPLOY_SYSROOT (cache or environment) overrides the sysroot, -DONNXRUNTIME_ROOT the ONNX
# Runtime arm64 install; CVDEPLOY_QEMU the emulator that runs the tests (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CVDEPLOY_CROSS_TRIPLE aarch64-linux-gnu)

get_filename_component(_cvdeploy_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
if(NOT CVDEPLOY_SYSROOT)
  if(DEFINED ENV{CVDEPLOY_SYSROOT})
    set(CVDEPLOY_SYSROOT "$ENV{CVDEPLOY_SYSROOT}")
  else()
    set(CVDEPLOY_SYSROOT "${_cvdeploy_root}/.deps/sysroot-arm64")
  endif()
endif()
get_filename_component(CVDEPLOY_SYSROOT "${CVDEPLOY_SYSROOT}" REALPATH)
if(NOT EXISTS "${CVDEPLOY_SYSROOT}/usr/include/aarch64-linux-gnu")
  message(FATAL_ERROR "no arm64 sysroot at ${CVDEPLOY_SYSROOT} (run scripts/setup-edge.sh)")
endif()
set(CVDEPLOY_SYSROOT "${CVDEPLOY_SYSROOT}" CACHE PATH "arm64 sysroot" FORCE)

# The environment's ONNXRUNTIME_ROOT (the host's x86 install, for the native build) is ignored:
# only -DONNXRUNTIME_ROOT chooses another arm64 install.
if(NOT ONNXRUNTIME_ROOT)
  set(ONNXRUNTIME_ROOT "${_cvdeploy_root}/.deps/onnxruntime-arm64" CACHE PATH "" FORCE)
endif()
if(NOT CVDEPLOY_QEMU)
  set(CVDEPLOY_QEMU "${_cvdeploy_root}/.deps/qemu/qemu-aarch64")
endif()

set(CMAKE_C_COMPILER ${CVDEPLOY_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${CVDEPLOY_CROSS_TRIPLE}-g++)
set(CMAKE_SYSROOT "${CVDEPLOY_SYSROOT}")
set(CMAKE_LIBRARY_ARCHITECTURE ${CVDEPLOY_CROSS_TRIPLE})

# Libraries, headers and CMake packages only from the sysroot (and ONNX Runtime arm64);
# programs (protoc, pkg-config, python) from the host.
set(CMAKE_FIND_ROOT_PATH "${CVDEPLOY_SYSROOT}" "${ONNXRUNTIME_ROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (libsodium) reads the sysroot's .pc files and prefixes their paths with it.
set(ENV{PKG_CONFIG_DIR} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${CVDEPLOY_SYSROOT}/usr/lib/${CVDEPLOY_CROSS_TRIPLE}/pkgconfig:${CVDEPLOY_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CVDEPLOY_SYSROOT}")

# The build generates no protobuf code today; if it ever does, protoc must be the host's
# (the generated code is architecture independent, and the arm64 protoc cannot run here).
set(Protobuf_PROTOC_EXECUTABLE /usr/bin/protoc CACHE FILEPATH "host protoc")

# Shared libraries' own dependencies (OpenCV's TBB, BLAS, ...) are resolved in the sysroot
# at link time.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${CVDEPLOY_SYSROOT}/usr/lib/${CVDEPLOY_CROSS_TRIPLE}:${CVDEPLOY_SYSROOT}/lib/${CVDEPLOY_CROSS_TRIPLE}")

# Tests (add_test on a target) run through qemu-user; QEMU_LD_PREFIX is set by the caller
# (make test-edge) to the sysroot so the arm64 loader and libraries are found.
if(EXISTS "${CVDEPLOY_QEMU}")
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CVDEPLOY_QEMU}")
endif()
