# SPDX-License-Identifier: Apache-2.0
# Locates third-party libraries. Every one is a Debian package except ONNX Runtime,
# which scripts/setup-deps.sh places under .deps/onnxruntime (ONNXRUNTIME_ROOT overrides).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(OpenSSL 3 REQUIRED)
# libsodium: argon2id, constant-time comparison, random bytes (src/security).
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
find_package(ONNX REQUIRED)
find_package(Protobuf REQUIRED)
find_package(Boost 1.74 REQUIRED)  # header-only: Beast (HTTP) and Asio
find_package(JPEG REQUIRED)  # libjpeg-turbo: the fast JPEG path of image decoding

# OpenCV: Debian's per-module -dev packages ship no CMake config, so find the four
# modules we use directly (imgcodecs, imgproc, videoio, core).
find_path(OPENCV_INCLUDE_DIR opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
add_library(cvdeploy_opencv INTERFACE)
target_include_directories(cvdeploy_opencv SYSTEM INTERFACE ${OPENCV_INCLUDE_DIR})
foreach(module videoio imgcodecs imgproc core)
  find_library(OPENCV_${module}_LIB opencv_${module} REQUIRED)
  target_link_libraries(cvdeploy_opencv INTERFACE ${OPENCV_${module}_LIB})
endforeach()

# ONNX Runtime: ONNXRUNTIME_ROOT (env or cache) > .deps/onnxruntime > find_package(onnxruntime).
set(ONNXRUNTIME_ROOT "$ENV{ONNXRUNTIME_ROOT}" CACHE PATH "ONNX Runtime install (include/, lib/)")
if(NOT ONNXRUNTIME_ROOT AND EXISTS "${PROJECT_SOURCE_DIR}/.deps/onnxruntime/include")
  set(ONNXRUNTIME_ROOT "${PROJECT_SOURCE_DIR}/.deps/onnxruntime" CACHE PATH "" FORCE)
endif()
add_library(cvdeploy_onnxruntime INTERFACE)
if(ONNXRUNTIME_ROOT)
  find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h
            PATHS "${ONNXRUNTIME_ROOT}/include" "${ONNXRUNTIME_ROOT}/include/onnxruntime"
            NO_DEFAULT_PATH REQUIRED)
  find_library(ORT_LIBRARY NAMES onnxruntime libonnxruntime.so.1
               PATHS "${ONNXRUNTIME_ROOT}/lib" NO_DEFAULT_PATH REQUIRED)
  target_include_directories(cvdeploy_onnxruntime SYSTEM INTERFACE ${ORT_INCLUDE_DIR})
  target_link_libraries(cvdeploy_onnxruntime INTERFACE ${ORT_LIBRARY})
  get_filename_component(ORT_LIBRARY_DIR "${ORT_LIBRARY}" DIRECTORY)
  set(CMAKE_BUILD_RPATH "${ORT_LIBRARY_DIR}")
  set(CMAKE_INSTALL_RPATH "${ORT_LIBRARY_DIR}")
else()
  find_package(onnxruntime REQUIRED)
  target_link_libraries(cvdeploy_onnxruntime INTERFACE onnxruntime::onnxruntime)
endif()
