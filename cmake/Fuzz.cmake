# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets (tests/fuzz/*_fuzz.cpp), one per parser that reads untrusted bytes.
# Enabled with -DCVDEPLOY_FUZZ=ON in a separate build directory configured with clang++
# (`make fuzz` does both, in build-fuzz/).
#
# Kept cheap on purpose, since a short run is part of `make test` on 2-core CI machines:
# only the parser sources below are compiled (with the fuzzer and sanitizer flags), into a
# static library, so each target links just the objects it references; the rest of the
# project is not built. Objects are split per function and unreferenced sections are
# dropped at link time, so a parser file that also holds heavier code (calibration.cpp's
# Calibrate runs the engine) links without that code's dependencies. Shared libraries
# (OpenCV, libjpeg, ONNX protobuf, OpenSSL, libsodium) are linked as they are, uninstrumented.
# A parser that starts using another src/ file needs it added to the list.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "CVDEPLOY_FUZZ needs clang (libFuzzer is part of it): "
                      "configure a separate build directory with CXX=clang++")
endif()

set(CVDEPLOY_FUZZ_COMPILE_FLAGS
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -g -O1 -ffunction-sections -fdata-sections)
set(CVDEPLOY_FUZZ_LINK_FLAGS -fsanitize=fuzzer,address,undefined -Wl,--gc-sections)
find_program(CVDEPLOY_LLD ld.lld)
if(CVDEPLOY_LLD)
  list(APPEND CVDEPLOY_FUZZ_LINK_FLAGS -fuse-ld=lld)
endif()

set(CVDEPLOY_FUZZ_PARSER_SOURCES
    src/core/file_util.cpp
    src/core/image_header.cpp
    src/core/image_io.cpp
    src/core/jpeg_decode.cpp
    src/core/json_limits.cpp
    src/core/secure_memory.cpp
    src/core/stats.cpp  # RoundTo, used by the drift baseline writer
    src/core/system.cpp  # Int8Features, used by the doctor's precision check
    src/core/task.cpp
    src/core/tensor.cpp
    src/eval/coco_dataset.cpp
    src/eval/doctor_layout.cpp  # doctor_model: the doctor's model facts and checks
    src/eval/doctor_model.cpp
    src/eval/drift_baseline.cpp
    src/eval/drift_features.cpp
    src/eval/drift_histogram.cpp
    src/eval/golden_json.cpp
    src/eval/sample_meta.cpp  # sample store: meta.json, response.json
    src/model/yaml_names.cpp
    src/eval/yolo_dataset.cpp
    src/model/metadata.cpp
    src/model/model_info.cpp
    src/optimize/calibration.cpp
    src/optimize/calibration_math.cpp
    src/server/http.cpp
    src/server/credentials.cpp
    src/server/json_excerpt.cpp
    src/server/kserve.cpp
    src/server/kserve_response.cpp
    src/server/model_config.cpp
    src/server/metrics.cpp
    src/server/multipart.cpp
    src/server/tls.cpp
    src/server/trace_context.cpp
    src/server/transport.cpp)
list(TRANSFORM CVDEPLOY_FUZZ_PARSER_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/)
# The security module as a whole (JWT, JWKS, key and user files, audit lines, policy): it
# depends on nothing of ours but the public headers.
file(GLOB CVDEPLOY_FUZZ_SECURITY_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/security/*.cpp)
list(APPEND CVDEPLOY_FUZZ_PARSER_SOURCES ${CVDEPLOY_FUZZ_SECURITY_SOURCES})
add_library(cvdeploy_fuzz_parsers STATIC EXCLUDE_FROM_ALL ${CVDEPLOY_FUZZ_PARSER_SOURCES})
target_compile_options(cvdeploy_fuzz_parsers PUBLIC ${CVDEPLOY_FUZZ_COMPILE_FLAGS})
target_include_directories(cvdeploy_fuzz_parsers
  PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src ${PROJECT_BINARY_DIR}/generated)
target_link_libraries(cvdeploy_fuzz_parsers
  PUBLIC cvdeploy_opencv cvdeploy_onnxruntime nlohmann_json::nlohmann_json Boost::headers
         OpenSSL::SSL OpenSSL::Crypto PkgConfig::SODIUM JPEG::JPEG Threads::Threads onnx onnx_proto
         protobuf::libprotobuf)

file(GLOB CVDEPLOY_FUZZ_HARNESSES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/*_fuzz.cpp)
set(CVDEPLOY_FUZZ_TARGETS)
foreach(harness ${CVDEPLOY_FUZZ_HARNESSES})
  get_filename_component(stem ${harness} NAME_WE)
  string(REGEX REPLACE "_fuzz$" "" name ${stem})
  add_executable(fuzz_${name} EXCLUDE_FROM_ALL ${harness})
  target_link_libraries(fuzz_${name} PRIVATE cvdeploy_fuzz_parsers)
  target_link_options(fuzz_${name} PRIVATE ${CVDEPLOY_FUZZ_LINK_FLAGS})
  # The runner (tests/fuzz/run_fuzz.py) finds every target as build-fuzz/fuzz/fuzz_NAME.
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY
                                                ${PROJECT_BINARY_DIR}/fuzz)
  list(APPEND CVDEPLOY_FUZZ_TARGETS fuzz_${name})
endforeach()
add_custom_target(fuzz_targets DEPENDS ${CVDEPLOY_FUZZ_TARGETS})
