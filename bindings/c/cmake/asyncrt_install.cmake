# CMake's install rules for C users (`cmake --install`): the same files, in the
# same places, as `make install` (the Makefile lists the layout), made from
# the same templates. tests/install/run.sh checks that the two routes install
# identical trees.
#
# The library is the prebuilt ASYNCRT_LIBRARY (Go builds it); CMake only
# copies it, under its versioned name, next to its two links.
include(GNUInstallDirs)

# The version comes from the header, the one place it is written.
file(STRINGS "${CMAKE_SOURCE_DIR}/include/asyncrt.h" _asyncrt_version_lines
     REGEX "^#define ASYNCRT_VERSION_(MAJOR|MINOR|PATCH) +[0-9]+$")
foreach(_part IN ITEMS MAJOR MINOR PATCH)
  if(NOT _asyncrt_version_lines MATCHES "ASYNCRT_VERSION_${_part} +([0-9]+)")
    message(FATAL_ERROR "no ASYNCRT_VERSION_${_part} in include/asyncrt.h")
  endif()
  set(ASYNCRT_VERSION_${_part} "${CMAKE_MATCH_1}")
endforeach()
set(ASYNCRT_VERSION "${ASYNCRT_VERSION_MAJOR}.${ASYNCRT_VERSION_MINOR}.${ASYNCRT_VERSION_PATCH}")
set(ASYNCRT_SONAME "libasyncrt.so.${ASYNCRT_VERSION_MAJOR}")

# The installed CMake files find the rest relative to themselves, so the
# directories must be relative to the prefix.
set(ASYNCRT_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
set(ASYNCRT_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE "${ASYNCRT_LIBDIR}" OR IS_ABSOLUTE "${ASYNCRT_INCLUDEDIR}")
  message(FATAL_ERROR "CMAKE_INSTALL_LIBDIR and CMAKE_INSTALL_INCLUDEDIR must be relative to the prefix")
endif()
file(RELATIVE_PATH ASYNCRT_CONFIG_TO_PREFIX "/prefix/${ASYNCRT_LIBDIR}/cmake/asyncrt" "/prefix")
string(REGEX REPLACE "/$" "" ASYNCRT_CONFIG_TO_PREFIX "${ASYNCRT_CONFIG_TO_PREFIX}")

set(_asyncrt_stage "${CMAKE_BINARY_DIR}/asyncrt-install")
file(MAKE_DIRECTORY "${_asyncrt_stage}")
file(CREATE_LINK "libasyncrt.so.${ASYNCRT_VERSION}" "${_asyncrt_stage}/${ASYNCRT_SONAME}" SYMBOLIC)
file(CREATE_LINK "${ASYNCRT_SONAME}" "${_asyncrt_stage}/libasyncrt.so" SYMBOLIC)
configure_file("${CMAKE_CURRENT_LIST_DIR}/asyncrtConfig.cmake.in"
               "${_asyncrt_stage}/asyncrtConfig.cmake" @ONLY)
configure_file("${CMAKE_CURRENT_LIST_DIR}/asyncrtConfigVersion.cmake.in"
               "${_asyncrt_stage}/asyncrtConfigVersion.cmake" @ONLY)

# A link given as ASYNCRT_LIBRARY would be installed as a link: copy its target.
get_filename_component(_asyncrt_library_file "${ASYNCRT_LIBRARY}" REALPATH)
install(FILES "${_asyncrt_library_file}" DESTINATION "${ASYNCRT_LIBDIR}"
        RENAME "libasyncrt.so.${ASYNCRT_VERSION}"
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
install(FILES "${_asyncrt_stage}/${ASYNCRT_SONAME}" "${_asyncrt_stage}/libasyncrt.so"
        DESTINATION "${ASYNCRT_LIBDIR}")
install(FILES "${CMAKE_SOURCE_DIR}/include/asyncrt.h" "${CMAKE_SOURCE_DIR}/bindings/c/asyncrt_coro.h"
        DESTINATION "${ASYNCRT_INCLUDEDIR}")
install(FILES "${_asyncrt_stage}/asyncrtConfig.cmake" "${_asyncrt_stage}/asyncrtConfigVersion.cmake"
        DESTINATION "${ASYNCRT_LIBDIR}/cmake/asyncrt")

# The .pc file names the prefix, which `cmake --install --prefix` can change
# after configuring: write it when installing, from the prefix of that run.
install(CODE "
  set(ASYNCRT_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(ASYNCRT_VERSION \"${ASYNCRT_VERSION}\")
  set(ASYNCRT_LIBDIR \"${ASYNCRT_LIBDIR}\")
  set(ASYNCRT_INCLUDEDIR \"${ASYNCRT_INCLUDEDIR}\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/../asyncrt.pc.in\" \"${_asyncrt_stage}/asyncrt.pc\" @ONLY)
")
install(FILES "${_asyncrt_stage}/asyncrt.pc" DESTINATION "${ASYNCRT_LIBDIR}/pkgconfig")
