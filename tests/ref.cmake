# ref.cmake: the independent SDM reference walker and the differential tests built on it.

add_library(vmem_ref STATIC ${CMAKE_CURRENT_LIST_DIR}/ref/ref_walk.c ${CMAKE_CURRENT_LIST_DIR}/ref/ref_diff.c)
target_include_directories(vmem_ref PUBLIC ${CMAKE_CURRENT_LIST_DIR}/ref)
target_link_libraries(vmem_ref PUBLIC vmem)

# The reference against the real-KVM answers in shared/spec/examples-v1.jsonl (hand-transcribed).
vmem_add_unit_test(ref_kvm_examples ${CMAKE_CURRENT_LIST_DIR}/ref/ref_kvm_examples.c)
target_link_libraries(ref_kvm_examples PRIVATE vmem_ref)

# Access matrix (after kvm-unit-tests x86/access.c): a fixed sample under "unit"
# (and memcheck), the whole matrix under "matrix-full".
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/access_matrix.c)
  vmem_add_unit_test(access_matrix ${CMAKE_CURRENT_LIST_DIR}/access_matrix.c)
  target_link_libraries(access_matrix PRIVATE vmem_ref)
  add_test(NAME access_matrix_full COMMAND access_matrix --full)
  set_tests_properties(access_matrix_full PROPERTIES LABELS matrix-full)
  # The same on a CPU without BMI2 (support/cpu_no_bmi2.c replaces the probe):
  # the assembly hands the window walks to the C window path.
  vmem_add_unit_test(access_matrix_nobmi2 ${CMAKE_CURRENT_LIST_DIR}/access_matrix.c
    ${CMAKE_CURRENT_LIST_DIR}/support/cpu_no_bmi2.c)
  target_link_libraries(access_matrix_nobmi2 PRIVATE vmem_ref)
endif()

# vmem_walk_batch lane by lane against the reference (tests/test_walk_batch.c, a unit test of the glob).
target_link_libraries(test_walk_batch PRIVATE vmem_ref)

# Random differential walks over every mode: fixed seed under "unit", a long run under "long".
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/walk_random.c)
  vmem_add_unit_test(walk_random ${CMAKE_CURRENT_LIST_DIR}/walk_random.c)
  target_link_libraries(walk_random PRIVATE vmem_ref)
  add_test(NAME walk_random_long COMMAND walk_random --count 2000000 --seed 12345)
  set_tests_properties(walk_random_long PROPERTIES LABELS long)
  vmem_add_unit_test(walk_random_nobmi2 ${CMAKE_CURRENT_LIST_DIR}/walk_random.c
    ${CMAKE_CURRENT_LIST_DIR}/support/cpu_no_bmi2.c)
  target_link_libraries(walk_random_nobmi2 PRIVATE vmem_ref)
endif()

# The fuzz target as a replay driver over the committed seed corpus (no clang needed).
if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_walk.c)
  add_executable(fuzz_walk_replay ${PROJECT_SOURCE_DIR}/fuzz/fuzz_walk.c)
  target_compile_definitions(fuzz_walk_replay PRIVATE VMEM_FUZZ_REPLAY=1)
  target_link_libraries(fuzz_walk_replay PRIVATE vmem_ref)
  file(GLOB VMEM_FUZZ_WALK_SEEDS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/corpus/walk/*)
  add_test(NAME fuzz_walk_replay COMMAND fuzz_walk_replay ${VMEM_FUZZ_WALK_SEEDS})
  set_tests_properties(fuzz_walk_replay PROPERTIES LABELS unit)
  vmem_add_memcheck(fuzz_walk_replay ${VMEM_FUZZ_WALK_SEEDS})
endif()

# The EPT fuzz target (vmem_ept_walk against tests/ref/ref_ept.c) as a replay driver over its seeds.
if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_ept.c AND EXISTS ${CMAKE_CURRENT_LIST_DIR}/ref/ref_ept.c)
  add_executable(fuzz_ept_replay ${PROJECT_SOURCE_DIR}/fuzz/fuzz_ept.c ${CMAKE_CURRENT_LIST_DIR}/ref/ref_ept.c)
  target_compile_definitions(fuzz_ept_replay PRIVATE VMEM_FUZZ_REPLAY=1)
  target_include_directories(fuzz_ept_replay PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ref)
  target_link_libraries(fuzz_ept_replay PRIVATE vmem)
  file(GLOB VMEM_FUZZ_EPT_SEEDS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/corpus/ept/*)
  add_test(NAME fuzz_ept_replay COMMAND fuzz_ept_replay ${VMEM_FUZZ_EPT_SEEDS})
  set_tests_properties(fuzz_ept_replay PROPERTIES LABELS unit)
  vmem_add_memcheck(fuzz_ept_replay ${VMEM_FUZZ_EPT_SEEDS})
endif()

# The nested walk against ref_walk and ref_ept composed (random EPT and guest tables of every mode, bit flips).
add_executable(nested_ref ${CMAKE_CURRENT_LIST_DIR}/nested_ref.c)
target_link_libraries(nested_ref PRIVATE vmem vmem_ref vmem_ref_ept)
add_test(NAME nested_ref COMMAND nested_ref 2000)
set_tests_properties(nested_ref PROPERTIES LABELS unit)
vmem_add_memcheck(nested_ref 200)
add_test(NAME nested_ref_long COMMAND nested_ref 200000)
set_tests_properties(nested_ref_long PROPERTIES LABELS long)
