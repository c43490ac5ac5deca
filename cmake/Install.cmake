# SPDX-License-Identifier: Apache-2.0
# `cmake --install BUILD --prefix P` lays out:
#   P/bin/cvdeploy                        the command line (target cvdeploy_cli), RUNPATH $ORIGIN/../lib
#   P/include/cvdeploy/*.h                public headers, build_info.h included
#   P/lib/lib<library>.a                  every library of CVDEPLOY_PACKAGE_LIBRARIES
#   P/lib/libonnxruntime.so*              the ONNX Runtime the build linked (when it came from a
#                                         directory: .deps or ONNXRUNTIME_ROOT)
#   P/lib/cmake/cvdeploy/                 find_package(cvdeploy): cvdeploy::cvdeploy (the library),
#                                         cvdeploy::tools (the model tools), cvdeploy::security
#                                         (crypto, auth, audit), cvdeploy::server (the HTTP server)
#                                         and their dependencies
#   P/lib/pkgconfig/cvdeploy.pc           pkg-config --cflags --libs cvdeploy
# Included at the end of the top-level CMakeLists.txt, after every target exists.
# Components: `cli` (the binary), `onnxruntime` (the shipped library in P/lib) and `dev`
# (headers, static libraries, CMake and pkg-config files) make up a plain `cmake --install`;
# the Debian package's own layout is the `debian` component of cmake/Packaging.cmake, which a
# plain install leaves out (EXCLUDE_FROM_ALL).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CVDEPLOY_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/cvdeploy)

# Rewrites `property` of `target` so that its absolute paths (this machine's source, build and
# .deps directories; with ALL, every item) hold in the build tree only: install(EXPORT) refuses
# source-tree paths, and an installed package must not point into a build machine's directories.
function(cvdeploy_build_only target property)
  cmake_parse_arguments(PARSE_ARGV 2 arg "ALL" "" "")
  get_target_property(values ${target} ${property})
  if(NOT values)
    return()
  endif()
  set(rewritten)
  foreach(value IN LISTS values)
    if(arg_ALL OR IS_ABSOLUTE "${value}")
      list(APPEND rewritten "$<BUILD_INTERFACE:${value}>")
    else()
      list(APPEND rewritten "${value}")
    endif()
  endforeach()
  set_property(TARGET ${target} PROPERTY ${property} "${rewritten}")
endfunction()

# A library of the package: installed to P/lib, exported as cvdeploy::<export_name>, its
# public include directories replaced by P/include once installed. Adding a library target to
# the package is one call of this function (below).
function(cvdeploy_package_library target export_name)
  cvdeploy_build_only(${target} INTERFACE_INCLUDE_DIRECTORIES)
  target_include_directories(${target} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  # The public headers are C++20 code compiled into the library: consumers use the same standard.
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  install(TARGETS ${target} EXPORT cvdeployTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT dev)
endfunction()

# cvdeploy_opencv and cvdeploy_onnxruntime (cmake/Dependencies.cmake) are plain INTERFACE
# targets naming files found on this machine. They are exported without those paths, as
# cvdeploy::opencv and cvdeploy::onnxruntime; cvdeployConfig.cmake gives them their usage
# requirements on the consumer's side (OpenCV found again, ONNX Runtime the installed copy).
foreach(dependency IN ITEMS cvdeploy_opencv cvdeploy_onnxruntime)
  foreach(property IN ITEMS INTERFACE_INCLUDE_DIRECTORIES INTERFACE_SYSTEM_INCLUDE_DIRECTORIES
                            INTERFACE_LINK_LIBRARIES)
    cvdeploy_build_only(${dependency} ${property} ALL)
  endforeach()
endforeach()
set_target_properties(cvdeploy_opencv PROPERTIES EXPORT_NAME opencv)
set_target_properties(cvdeploy_onnxruntime PROPERTIES EXPORT_NAME onnxruntime)
install(TARGETS cvdeploy_opencv cvdeploy_onnxruntime EXPORT cvdeployTargets COMPONENT dev)

# ---- The package's libraries: one line each. ------------------------------------------------
cvdeploy_package_library(cvdeploy cvdeploy)
cvdeploy_package_library(cvdeploy_tools tools)
cvdeploy_package_library(cvdeploy_security security)
cvdeploy_package_library(cvdeploy_server server)

# ---- Headers --------------------------------------------------------------------------------
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/cvdeploy
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/generated/cvdeploy/build_info.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/cvdeploy COMPONENT dev)

# ---- ONNX Runtime ---------------------------------------------------------------------------
# Shipped next to the library when the build took it from a directory, so that neither the
# installed binary nor a consumer depends on .deps. Symlinks (libonnxruntime.so ->
# libonnxruntime.so.1) are installed as symlinks.
if(ORT_LIBRARY)
  get_filename_component(CVDEPLOY_ORT_LIBRARY_DIR "${ORT_LIBRARY}" DIRECTORY)
  install(DIRECTORY ${CVDEPLOY_ORT_LIBRARY_DIR}/ DESTINATION ${CMAKE_INSTALL_LIBDIR}
          COMPONENT onnxruntime FILES_MATCHING PATTERN "libonnxruntime.so*")
  set(CVDEPLOY_SHIPS_ONNXRUNTIME ON)
else()
  set(CVDEPLOY_SHIPS_ONNXRUNTIME OFF)
endif()

# ---- Command line ---------------------------------------------------------------------------
# Dependencies.cmake's CMAKE_INSTALL_RPATH names .deps; the installed binary finds the shipped
# ONNX Runtime relative to itself instead (the build-tree binary keeps its build RPATH).
set_target_properties(cvdeploy_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS cvdeploy_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
# The training front end (libtorch) is its own component: the Debian package, the container
# image and the edge bundle install `cli` only.
if(TARGET cvdeploy_train_cli)
  set_target_properties(cvdeploy_train_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
  install(TARGETS cvdeploy_train_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT training)
endif()

# ---- CMake package --------------------------------------------------------------------------
install(EXPORT cvdeployTargets NAMESPACE cvdeploy:: DESTINATION ${CVDEPLOY_INSTALL_CMAKEDIR}
        COMPONENT dev)
configure_package_config_file(cmake/cvdeployConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/cvdeployConfig.cmake
                              INSTALL_DESTINATION ${CVDEPLOY_INSTALL_CMAKEDIR}
                              PATH_VARS CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cvdeployConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cvdeployConfig.cmake
              ${PROJECT_BINARY_DIR}/cvdeployConfigVersion.cmake
        DESTINATION ${CVDEPLOY_INSTALL_CMAKEDIR} COMPONENT dev)

# ---- pkg-config -----------------------------------------------------------------------------
# The link line of all four libraries (tools, server, security, core: users first). Debian
# ships .pc files for OpenSSL, libsodium, spdlog, libjpeg, protobuf and nlohmann_json, not for
# the per-module OpenCV packages nor ONNX: those are named.
# -l flags for libraries found by path; -L only for directories the linker does not search.
function(cvdeploy_pc_link_flags out)
  set(flags)
  foreach(library IN LISTS ARGN)
    get_filename_component(directory "${library}" DIRECTORY)
    get_filename_component(name "${library}" NAME_WE)
    string(REGEX REPLACE "^lib" "" name "${name}")
    if(NOT directory IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
      list(APPEND flags "-L${directory}")
    endif()
    list(APPEND flags "-l${name}")
  endforeach()
  list(REMOVE_DUPLICATES flags)
  list(JOIN flags " " flags)
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()
cvdeploy_pc_link_flags(CVDEPLOY_PC_OPENCV_LIBS ${OPENCV_videoio_LIB} ${OPENCV_imgcodecs_LIB}
                       ${OPENCV_imgproc_LIB} ${OPENCV_core_LIB})
# Imported targets of ONNX's CMake package: LOCATION is their library file.
get_target_property(CVDEPLOY_ONNX_LIBRARY onnx LOCATION)
get_target_property(CVDEPLOY_ONNX_PROTO_LIBRARY onnx_proto LOCATION)
cvdeploy_pc_link_flags(CVDEPLOY_PC_ONNX_LIBS ${CVDEPLOY_ONNX_LIBRARY} ${CVDEPLOY_ONNX_PROTO_LIBRARY})
if(CVDEPLOY_SHIPS_ONNXRUNTIME)
  set(CVDEPLOY_PC_ORT_LIBS "-lonnxruntime")
else()
  set(CVDEPLOY_PC_ORT_LIBS "$<TARGET_FILE:onnxruntime::onnxruntime>")
endif()
configure_file(cmake/cvdeploy.pc.in ${PROJECT_BINARY_DIR}/cvdeploy.pc.in @ONLY)
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/cvdeploy.pc INPUT ${PROJECT_BINARY_DIR}/cvdeploy.pc.in)
install(FILES ${PROJECT_BINARY_DIR}/cvdeploy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)
