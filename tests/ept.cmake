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
