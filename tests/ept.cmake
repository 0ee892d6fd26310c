# ept.cmake: EPT / nested tests beyond the auto-registered test_ept_walk and test_nested.

# The 16 ept/nested real-oracle examples through the vectors checker (label unit, plus memcheck).
vmem_add_unit_test(ept_examples ${CMAKE_CURRENT_LIST_DIR}/ept_examples.c)
target_compile_definitions(ept_examples PRIVATE
  VMEM_EPT_EXAMPLES="${CMAKE_CURRENT_LIST_DIR}/data/examples-ept-nested-v1.jsonl")
