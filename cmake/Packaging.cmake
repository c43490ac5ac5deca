# SPDX-License-Identifier: Apache-2.0
# The Debian package (issue 17, "Local servers"): `make deb` runs CPack's DEB generator on the
# `debian` install component defined here and writes BUILD/cvdeploy_<version>_amd64.deb.
#
# Layout of the package (prefix /usr; absolute destinations go through DESTDIR):
#   /usr/bin/cvdeploy                          RUNPATH /usr/lib/cvdeploy (readelf -d)
#   /usr/lib/cvdeploy/libonnxruntime.so.1      ONNX Runtime, private to cvdeploy
#   /lib/systemd/system/cvdeploy.service       deploy/systemd/cvdeploy.service
#   /etc/cvdeploy/cvdeploy.env                 conffile: the service's settings
#   /usr/share/doc/cvdeploy/                   copyright, changelog.gz (a native package), README.Debian
#   /usr/share/man/man1/cvdeploy.1.gz
#   /usr/share/lintian/overrides/cvdeploy      deploy/debian/lintian-overrides (ONNX Runtime's)
#   DEBIAN/{postinst,prerm,postrm,conffiles}   deploy/debian/: the cvdeploy system user, the
#                                              directories, enabling the unit, purge
# Depends: dpkg-shlibdeps over the binary and the private library (the private directory is
# given to it with -l, so ONNX Runtime resolves inside the package and adds no dependency),
# plus adduser for postinst.
#
# The `debian` component is EXCLUDE_FROM_ALL: a plain `cmake --install` (cmake/Install.cmake)
# keeps its own layout (P/lib/libonnxruntime.so.1, RUNPATH $ORIGIN/../lib) and installs none of
# this. Needs ONNX Runtime taken from a directory (.deps or ONNXRUNTIME_ROOT): a system-wide
# onnxruntime package would be a Depends instead, which this file does not handle.
# Included at the end of the top-level CMakeLists.txt, after cmake/Install.cmake.

if(NOT ORT_LIBRARY)
  message(STATUS "cvdeploy: no Debian package target (ONNX Runtime not taken from a directory)")
  return()
endif()

set(CVDEPLOY_DEB_PREFIX /usr)
set(CVDEPLOY_DEB_PRIVATE_LIBDIR lib/cvdeploy)  # relative to the prefix
set(CVDEPLOY_DEB_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)

# Full RELRO for the binary a service runs (lintian: hardening-no-bindnow); relinks it only.
target_link_options(cvdeploy_cli PRIVATE LINKER:-z,relro,-z,now)

# ---- The binary, its RUNPATH rewritten to the private directory ----------------------------
# The same target a second time, in the package's component: cmake_install.cmake first sets
# the generic INSTALL_RPATH ($ORIGIN/../lib), then this replaces it. The new path fits: the
# linker reserved room for the longer build RPATH (the absolute .deps/onnxruntime/lib path).
install(TARGETS cvdeploy_cli RUNTIME DESTINATION bin COMPONENT debian EXCLUDE_FROM_ALL)
install(CODE "
  set(_cvdeploy_bin \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/bin/cvdeploy\")
  file(RPATH_CHANGE FILE \"\${_cvdeploy_bin}\" OLD_RPATH \"\$ORIGIN/../${CMAKE_INSTALL_LIBDIR}\"
       NEW_RPATH \"\${CMAKE_INSTALL_PREFIX}/${CVDEPLOY_DEB_PRIVATE_LIBDIR}\")
" COMPONENT debian EXCLUDE_FROM_ALL)

# ---- ONNX Runtime: the versioned library only (no libonnxruntime.so development link) --------
file(REAL_PATH "${ORT_LIBRARY}" CVDEPLOY_ORT_REAL_LIBRARY)
install(FILES ${CVDEPLOY_ORT_REAL_LIBRARY} DESTINATION ${CVDEPLOY_DEB_PRIVATE_LIBDIR}
        RENAME libonnxruntime.so.1 COMPONENT debian EXCLUDE_FROM_ALL)
# Execution-provider plugins shipped beside it (CUDA/TensorRT builds), if any.
file(GLOB CVDEPLOY_ORT_PROVIDERS "${CVDEPLOY_ORT_LIBRARY_DIR}/libonnxruntime_providers_*.so")
if(CVDEPLOY_ORT_PROVIDERS)
  install(FILES ${CVDEPLOY_ORT_PROVIDERS} DESTINATION ${CVDEPLOY_DEB_PRIVATE_LIBDIR}
          COMPONENT debian EXCLUDE_FROM_ALL)
endif()

# ---- Service, configuration, documentation -------------------------------------------------
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/cvdeploy.service
        DESTINATION /lib/systemd/system COMPONENT debian EXCLUDE_FROM_ALL)
install(FILES ${CVDEPLOY_DEB_DIR}/cvdeploy.env DESTINATION /etc/cvdeploy
        COMPONENT debian EXCLUDE_FROM_ALL)
# The empty directories the package owns (postinst sets their owner and mode).
install(DIRECTORY DESTINATION /var/lib/cvdeploy/models COMPONENT debian EXCLUDE_FROM_ALL)
install(DIRECTORY DESTINATION /var/log/cvdeploy COMPONENT debian EXCLUDE_FROM_ALL)

# The changelog date is the commit's (SOURCE_DATE_EPOCH when given), not the configure time:
# reproducible, and a re-configure does not regenerate the package files.
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%ct
                  OUTPUT_VARIABLE _cvdeploy_commit_time OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET RESULT_VARIABLE _cvdeploy_git_rc)
  if(_cvdeploy_git_rc EQUAL 0 AND _cvdeploy_commit_time MATCHES "^[0-9]+$")
    set(ENV{SOURCE_DATE_EPOCH} ${_cvdeploy_commit_time})
  endif()
endif()
string(TIMESTAMP CVDEPLOY_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(CVDEPLOY_DEB_VERSION ${PROJECT_VERSION})
set(CVDEPLOY_DEB_MAINTAINER_EMAIL "maintainers@cvdeploy.invalid")
set(CVDEPLOY_DEB_STAGE ${PROJECT_BINARY_DIR}/debian-stage)
configure_file(${CVDEPLOY_DEB_DIR}/changelog.in ${CVDEPLOY_DEB_STAGE}/changelog @ONLY)
# gzip -9n: no name, no time stamp in the header (reproducible; lintian checks it).
add_custom_command(
  OUTPUT ${CVDEPLOY_DEB_STAGE}/changelog.gz ${CVDEPLOY_DEB_STAGE}/cvdeploy.1.gz
  COMMAND gzip -9nc ${CVDEPLOY_DEB_STAGE}/changelog > ${CVDEPLOY_DEB_STAGE}/changelog.gz
  COMMAND gzip -9nc ${CVDEPLOY_DEB_DIR}/cvdeploy.1 > ${CVDEPLOY_DEB_STAGE}/cvdeploy.1.gz
  DEPENDS ${CVDEPLOY_DEB_STAGE}/changelog ${CVDEPLOY_DEB_DIR}/cvdeploy.1
  VERBATIM)
add_custom_target(cvdeploy_deb_files ALL
  DEPENDS ${CVDEPLOY_DEB_STAGE}/changelog.gz ${CVDEPLOY_DEB_STAGE}/cvdeploy.1.gz)
install(FILES ${CVDEPLOY_DEB_DIR}/copyright ${CVDEPLOY_DEB_STAGE}/changelog.gz
              ${CVDEPLOY_DEB_DIR}/README.Debian
        DESTINATION share/doc/cvdeploy COMPONENT debian EXCLUDE_FROM_ALL)
install(FILES ${CVDEPLOY_DEB_STAGE}/cvdeploy.1.gz DESTINATION share/man/man1
        COMPONENT debian EXCLUDE_FROM_ALL)
install(FILES ${CVDEPLOY_DEB_DIR}/lintian-overrides DESTINATION share/lintian/overrides
        RENAME cvdeploy COMPONENT debian EXCLUDE_FROM_ALL)

# ---- CTest: the unit's smoke test (seconds; the full package test is `make test-deb`) ------
if(CVDEPLOY_BUILD_TESTS)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  add_test(NAME deb_unit_smoke
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/test_deb.py
                   --build ${PROJECT_BINARY_DIR} --smoke)
  set_tests_properties(deb_unit_smoke PROPERTIES LABELS integration TIMEOUT 180
                       SKIP_RETURN_CODE 77)
endif()

# ---- CPack ----------------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cvdeploy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "cvdeploy maintainers <${CVDEPLOY_DEB_MAINTAINER_EMAIL}>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "YOLO ONNX models: predict, validate, optimize and serve")
set(CPACK_PACKAGE_DESCRIPTION
    "cvdeploy runs Ultralytics YOLO models exported to ONNX (detect, segment, pose,\n"
    "classify, obb) on ONNX Runtime: a command line for prediction, validation,\n"
    "benchmarks and model tools, and an HTTP server speaking the KServe v2 protocol\n"
    "with image endpoints and Prometheus metrics, run as the hardened systemd\n"
    "service cvdeploy.service.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://cvdeploy.invalid/")
# Installed with DESTDIR=<staging> and prefix /usr, so that the absolute destinations (/etc,
# /lib/systemd) land in the package and not on the build machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX ${CVDEPLOY_DEB_PREFIX})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CVDEPLOY_DEB_PREFIX})
set(CPACK_STRIP_FILES ON)
# Only the `debian` component: (build directory, project, component, subdirectory).
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};cvdeploy;debian;/")
set(CPACK_OUTPUT_FILE_PREFIX ${PROJECT_BINARY_DIR})
set(CPACK_DEBIAN_FILE_NAME "cvdeploy_${PROJECT_VERSION}_amd64.deb")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Relative to the staging directory dpkg-shlibdeps runs in: the packaged private directory.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CVDEPLOY_DEB_PREFIX}/${CVDEPLOY_DEB_PRIVATE_LIBDIR})
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)  # the private library is nobody else's dependency
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CVDEPLOY_DEB_DIR}/postinst ${CVDEPLOY_DEB_DIR}/prerm ${CVDEPLOY_DEB_DIR}/postrm
    ${CVDEPLOY_DEB_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_THREADS 0)
include(CPack)
