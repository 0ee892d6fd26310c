# KVM oracle: random 4-level walks answered by KVM's MMU, checked against
# vmem_walk; and the shipped corpus those walks produced (tests/corpus).
enable_language(ASM)
add_executable(oracle_walk
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/oracle_walk.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_vm.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_common.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_guest.S
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_case.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_answer.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oracle/kvm_emit.c)
target_link_libraries(oracle_walk PRIVATE vmem)
target_include_directories(oracle_walk PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/oracle)

# ctest-sized run: 3000 cases, fixed seed. 77 = KVM unusable here (SKIPPED).
add_test(NAME oracle_kvm_walk
  COMMAND oracle_walk --count 3000 --report ${CMAKE_BINARY_DIR}/DISAGREEMENTS.txt)
set_tests_properties(oracle_kvm_walk PROPERTIES LABELS "oracle;unit"
  SKIP_RETURN_CODE 77 TIMEOUT 120)

# The shipped corpus (expectations from KVM), checked by the `vmem` CLI when
# it is built. The CLI's target is vmem_cli (`vmem` is the library's).
if(TARGET vmem_cli)
  add_test(NAME corpus_kvm_walk_v1
    COMMAND vmem_cli vectors check ${CMAKE_CURRENT_SOURCE_DIR}/corpus/kvm-walk-v1.jsonl)
  set_tests_properties(corpus_kvm_walk_v1 PROPERTIES LABELS "oracle;unit;vectors"
    PASS_REGULAR_EXPRESSION "4000 passed, 0 failed")
endif()
