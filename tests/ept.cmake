# ept.cmake: EPT / nested tests beyond the auto-registered test_ept_walk and test_nested.

# The 16 ept/nested real-oracle examples through the vectors checker (label unit, plus memcheck).
vmem_add_unit_test(ept_examples ${CMAKE_CURRENT_LIST_DIR}/ept_examples.c)
target_compile_definitions(ept_examples PRIVATE
  VMEM_EPT_EXAMPLES="${CMAKE_CURRENT_LIST_DIR}/data/examples-ept-nested-v1.jsonl")

# The nested walk's fast path against its full walk (random EPT + guest tables, bit flips, every access).
add_executable(nested_fastpath ${CMAKE_CURRENT_LIST_DIR}/nested_fastpath.c)
target_link_libraries(nested_fastpath PRIVATE vmem)
add_test(NAME nested_fastpath COMMAND nested_fastpath 2000)
set_tests_properties(nested_fastpath PROPERTIES LABELS unit)
vmem_add_memcheck(nested_fastpath 200)
add_test(NAME nested_fastpath_long COMMAND nested_fastpath 300000)
set_tests_properties(nested_fastpath_long PROPERTIES LABELS long)
# The same on a CPU without BMI2 (support/cpu_no_bmi2.c replaces the probe): the
# assembly (lib/nested_x86_64.c) hands every walk to the C fast path behind it.
add_executable(nested_fastpath_nobmi2 ${CMAKE_CURRENT_LIST_DIR}/nested_fastpath.c
  ${CMAKE_CURRENT_LIST_DIR}/support/cpu_no_bmi2.c)
target_link_libraries(nested_fastpath_nobmi2 PRIVATE vmem)
target_include_directories(nested_fastpath_nobmi2 PRIVATE ${PROJECT_SOURCE_DIR}/lib)
add_test(NAME nested_fastpath_nobmi2 COMMAND nested_fastpath_nobmi2 2000)
set_tests_properties(nested_fastpath_nobmi2 PROPERTIES LABELS unit)

# A concurrent walker of the same EPT context over another host memory map,
# at every instruction of the nested walk (single-stepped with EFLAGS.TF, so
# x86-64 Linux only, and no memcheck twin: Valgrind does not single-step).
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  add_executable(nested_hint_race ${CMAKE_CURRENT_LIST_DIR}/nested_hint_race.c)
  target_link_libraries(nested_hint_race PRIVATE vmem ${CMOCKA_LIB})
  target_include_directories(nested_hint_race PRIVATE ${CMOCKA_INCLUDE})
  target_compile_options(nested_hint_race PRIVATE -mno-red-zone)
  add_test(NAME nested_hint_race COMMAND nested_hint_race)
  set_tests_properties(nested_hint_race PROPERTIES LABELS unit)
endif()
