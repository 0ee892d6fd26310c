# ept_matrix.cmake: the EPT access matrix (after kvm-unit-tests vmx_tests.c ept_access_test_*) against the reference tests/ref/ref_ept.c.

add_library(vmem_ref_ept STATIC ${CMAKE_CURRENT_LIST_DIR}/ref/ref_ept.c)
target_include_directories(vmem_ref_ept PUBLIC ${CMAKE_CURRENT_LIST_DIR}/ref)

# A fixed sample (seconds) under "unit" (and memcheck); everything under "matrix-full".
vmem_add_unit_test(ept_access_matrix ${CMAKE_CURRENT_LIST_DIR}/ept_access_matrix.c)
target_link_libraries(ept_access_matrix PRIVATE vmem_ref_ept)
add_test(NAME ept_access_matrix_full COMMAND ept_access_matrix --full)
set_tests_properties(ept_access_matrix_full PROPERTIES LABELS matrix-full TIMEOUT 1800)
