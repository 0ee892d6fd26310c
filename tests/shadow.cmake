# shadow.cmake: shadow-paging tests beyond the auto-registered tests/test_shadow*.c.

# The sequence generator and the engine-vs-reference runner, shared by the
# random test, the fuzz replay and (later) a KVM oracle.
add_library(vmem_shadow_seq STATIC ${CMAKE_CURRENT_LIST_DIR}/shadow_seq.c ${CMAKE_CURRENT_LIST_DIR}/shadow_run.c)
target_include_directories(vmem_shadow_seq PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(vmem_shadow_seq PUBLIC vmem_ref vmem)

# Random sequences: a short run under "unit" (and memcheck), a long one under "long".
vmem_add_unit_test(shadow_random ${CMAKE_CURRENT_LIST_DIR}/shadow_random.c)
target_link_libraries(shadow_random PRIVATE vmem_shadow_seq)
add_test(NAME shadow_random_long COMMAND shadow_random --count 2000 --ops 1000 --seed 777)
set_tests_properties(shadow_random_long PROPERTIES LABELS long TIMEOUT 7200)

# The fuzz target as a replay driver over its committed seed corpus.
if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/fuzz_shadow.c)
  add_executable(fuzz_shadow_replay ${PROJECT_SOURCE_DIR}/fuzz/fuzz_shadow.c)
  target_compile_definitions(fuzz_shadow_replay PRIVATE VMEM_FUZZ_REPLAY=1)
  target_link_libraries(fuzz_shadow_replay PRIVATE vmem_shadow_seq)
  file(GLOB VMEM_FUZZ_SHADOW_SEEDS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/corpus/shadow/*)
  add_test(NAME fuzz_shadow_replay COMMAND fuzz_shadow_replay ${VMEM_FUZZ_SHADOW_SEEDS})
  set_tests_properties(fuzz_shadow_replay PROPERTIES LABELS unit)
  vmem_add_memcheck(fuzz_shadow_replay ${VMEM_FUZZ_SHADOW_SEEDS})
endif()
