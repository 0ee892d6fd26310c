# packaging.cmake: install into a temp prefix and build consumers (CMake and pkg-config); check the .so exports only vmem_*.
#
# Included by tests/CMakeLists.txt, it declares the tests; run with
# `cmake -P` by those tests, it does the checks (MODE=install or exports).

if(NOT CMAKE_SCRIPT_MODE_FILE)
  set(_vmem_pkg_flags "")
  if(VMEM_SANITIZE)
    set(_vmem_pkg_flags "-fsanitize=address,undefined")
  endif()
  find_program(VMEM_PKG_CONFIG NAMES pkg-config pkgconf)
  add_test(NAME packaging_install
    COMMAND ${CMAKE_COMMAND}
      -DMODE=install
      -DBIN=${CMAKE_BINARY_DIR}
      -DSRC=${PROJECT_SOURCE_DIR}
      -DWORK=${CMAKE_CURRENT_BINARY_DIR}/packaging
      -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
      -DCC=${CMAKE_C_COMPILER}
      "-DFLAGS=${_vmem_pkg_flags}"
      -DPKG_CONFIG=${VMEM_PKG_CONFIG}
      -P ${CMAKE_CURRENT_LIST_FILE})
  add_test(NAME packaging_exports
    COMMAND ${CMAKE_COMMAND} -DMODE=exports -DNM=${CMAKE_NM}
      -DLIB=$<TARGET_FILE:vmem_shared> -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(packaging_install packaging_exports PROPERTIES LABELS unit TIMEOUT 600)
  return()
endif()

# ---- script mode ------------------------------------------------------------
cmake_minimum_required(VERSION 3.20)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "FAILED (${rc}): ${cmd}\n${out}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "exports")
  run(${NM} -D --defined-only ${LIB})
  string(REPLACE "\n" ";" lines "${run_out}")
  set(n 0)
  set(bad "")
  foreach(l IN LISTS lines)
    if(l MATCHES "^[0-9a-fA-F]* *[A-Za-z] ([^ @]+)")
      set(sym "${CMAKE_MATCH_1}")
      math(EXPR n "${n} + 1")
      if(NOT sym MATCHES "^vmem_")
        list(APPEND bad "${sym}")
      endif()
    endif()
  endforeach()
  if(bad)
    message(FATAL_ERROR "${LIB} exports symbols outside vmem_*: ${bad}")
  endif()
  if(n LESS 10 OR NOT run_out MATCHES " vmem_walk\n")
    message(FATAL_ERROR "${LIB}: only ${n} exported symbols, vmem_walk missing?\n${run_out}")
  endif()
  message(STATUS "exports: ${n} symbols, all vmem_*")
  return()
endif()

if(NOT MODE STREQUAL "install")
  message(FATAL_ERROR "packaging.cmake: MODE must be install or exports")
endif()

separate_arguments(flags UNIX_COMMAND "${FLAGS}")
set(prefix ${WORK}/prefix)
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})

# 1. cmake --install into a temp prefix.
run(${CMAKE_COMMAND} --install ${BIN} --prefix ${prefix})
foreach(f include/libvmem/walk.h ${LIBDIR}/libvmem.a ${LIBDIR}/libvmem.so
    ${LIBDIR}/pkgconfig/libvmem.pc ${LIBDIR}/cmake/libvmem/libvmemConfig.cmake)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install: ${f} missing from ${prefix}")
  endif()
endforeach()
message(STATUS "installed into ${prefix}")

# 2. Every installed header compiles on its own, warning-free.
file(GLOB headers RELATIVE ${prefix}/include ${prefix}/include/libvmem/*.h)
foreach(h IN LISTS headers)
  string(MAKE_C_IDENTIFIER "${h}" id)
  file(WRITE ${WORK}/hdr_${id}.c "#include <${h}>\nint vmem_hdr_check_${id}(void);\nint vmem_hdr_check_${id}(void) { return 0; }\n")
  run(${CC} -std=c11 -Wall -Wextra -Werror -Wstrict-prototypes -I${prefix}/include
    -c ${WORK}/hdr_${id}.c -o ${WORK}/hdr_${id}.o)
endforeach()
list(LENGTH headers nh)
message(STATUS "${nh} installed headers compile standalone")

# 3. A CMake consumer: find_package(libvmem) -> libvmem::vmem and libvmem::vmem_shared.
string(REPLACE ";" " " flag_str "${flags}")
run(${CMAKE_COMMAND} -S ${SRC}/tests/install -B ${WORK}/consumer
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${CC}
  "-DCMAKE_C_FLAGS=${flag_str}" "-DCMAKE_EXE_LINKER_FLAGS=${flag_str}")
run(${CMAKE_COMMAND} --build ${WORK}/consumer)
foreach(exe consumer_static consumer_shared)
  run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${prefix}/${LIBDIR} ${WORK}/consumer/${exe})
  message(STATUS "${exe}: ${run_out}")
endforeach()

# 4. A pkg-config consumer: cc $(pkg-config --cflags --libs libvmem).
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config not found")
endif()
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig
  ${PKG_CONFIG} --cflags --libs libvmem)
string(STRIP "${run_out}" pc_flags)
message(STATUS "pkg-config --cflags --libs libvmem: ${pc_flags}")
string(FIND "${pc_flags}" "${prefix}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "libvmem.pc does not point into the install prefix ${prefix}")
endif()
separate_arguments(pc_list UNIX_COMMAND "${pc_flags}")
run(${CC} -std=c11 -Wall -Wextra -Werror ${flags} ${SRC}/tests/install/consumer.c ${pc_list}
  -o ${WORK}/consumer_pkgconfig)
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${prefix}/${LIBDIR} ${WORK}/consumer_pkgconfig)
message(STATUS "consumer_pkgconfig: ${run_out}")
