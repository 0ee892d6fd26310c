# KVM shadow oracle: random sequences of paging ops (guest page-table writes,
# MOV CR3, INVLPG, accesses at CPL 0/3) run by KVM's shadow MMU and by
# libvmem's shadow engine (and a plain vmem_walk reference), compared op by op.
enable_language(ASM)
set(_ksq_dir ${CMAKE_CURRENT_SOURCE_DIR}/oracle)
add_executable(oracle_shadow
  ${_ksq_dir}/oracle_shadow.c
  ${_ksq_dir}/kvm_seq_gen.c
  ${_ksq_dir}/kvm_seq_vm.c
  ${_ksq_dir}/kvm_common.c
  ${_ksq_dir}/kvm_seq_guest.S
  ${_ksq_dir}/kvm_seq_ref.c
  ${_ksq_dir}/kvm_seq_shadow.c)
target_link_libraries(oracle_shadow PRIVATE vmem)
target_include_directories(oracle_shadow PRIVATE ${_ksq_dir})

# ctest-sized run: 300 sequences of ~20-60 ops, fixed seed. 77 = KVM unusable (SKIPPED).
add_test(NAME oracle_kvm_shadow
  COMMAND oracle_shadow --count 300 --report ${CMAKE_BINARY_DIR}/DISAGREEMENTS-kvm-shadow.txt)
set_tests_properties(oracle_kvm_shadow PROPERTIES LABELS "oracle;unit"
  SKIP_RETURN_CODE 77 TIMEOUT 120)
# Long run: more and longer sequences, another seed.
add_test(NAME oracle_kvm_shadow_long
  COMMAND oracle_shadow --count 5000 --ops 120 --seed 0x6c6f6e67
    --report ${CMAKE_BINARY_DIR}/DISAGREEMENTS-kvm-shadow-long.txt)
set_tests_properties(oracle_kvm_shadow_long PROPERTIES LABELS "oracle;long"
  SKIP_RETURN_CODE 77 TIMEOUT 3600)
# Host side under Valgrind (label memcheck; not in sanitizer builds).
if(COMMAND vmem_add_memcheck)
  vmem_add_memcheck(oracle_shadow --count 10)
  if(TEST memcheck_oracle_shadow)
    set_tests_properties(memcheck_oracle_shadow PROPERTIES SKIP_RETURN_CODE 77)
  endif()
endif()
