# Bochs oracle: the vtx bare-metal image runs EPT and guest-mode scenarios under Bochs 2.7's VMX/EPT; the vectors it prints,
# after the known-difference table (vtx/bochs_kd.c), must all agree with libvmem. And the shipped corpora those runs produced.
# vtx/ is added after tests/ (top-level CMakeLists.txt), so test for its source, not its target.
if(EXISTS ${PROJECT_SOURCE_DIR}/vtx/CMakeLists.txt AND TARGET vmem_cli)
  add_test(NAME oracle_bochs_ept
    COMMAND ${PROJECT_SOURCE_DIR}/vtx/run-bochs.sh ${CMAKE_BINARY_DIR}/vtx $<TARGET_FILE:vmem_cli>
      ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-ept-v1.jsonl ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-modes-v1.jsonl)
  # 77 = Bochs not installed: reported as SKIPPED, never as a pass.
  set_tests_properties(oracle_bochs_ept PROPERTIES LABELS "oracle;unit"
    SKIP_RETURN_CODE 77 TIMEOUT 400 RUN_SERIAL TRUE FIXTURES_SETUP bochs_run)
  # The known-difference table itself (KD1, KD2, KD3) on a sample of Bochs output: needs no Bochs.
  add_test(NAME bochs_kd_table
    COMMAND ${PROJECT_SOURCE_DIR}/vtx/test-bochs-kd.sh $<TARGET_FILE:vtx_bochs_kd> $<TARGET_FILE:vmem_cli>
      ${CMAKE_CURRENT_SOURCE_DIR}/data/bochs-kd-sample.txt ${CMAKE_CURRENT_BINARY_DIR}/bochs-kd-table)
  set_tests_properties(bochs_kd_table PROPERTIES LABELS "oracle;unit")
endif()
# The shipped corpora: bochs-ept-v1 (EPT scenarios, vtx/oracle_ept.c) and bochs-modes-v1 (32-bit, PAE and
# 4-level guests at CPL 0 and 3, SMEP/SMAP/PKU, 1G pages: vtx/oracle_modes.c; KD3 rewrites are named in the ids).
foreach(_corpus ept modes)
  if(TARGET vmem_cli AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-${_corpus}-v1.jsonl)
    add_test(NAME corpus_bochs_${_corpus}_v1
      COMMAND vmem_cli vectors check ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-${_corpus}-v1.jsonl)
    set_tests_properties(corpus_bochs_${_corpus}_v1 PROPERTIES LABELS "oracle;unit;vectors"
      PASS_REGULAR_EXPRESSION "[1-9][0-9]* passed, 0 failed")
  endif()
endforeach()
# The segmentation oracle (vtx/oracle_seg.c): seg_oracle_check compares libvmem's loads and translations with what
# Bochs did, field by field; corpus_bochs_seg_v1 re-checks the shipped answers without Bochs, oracle_bochs_seg
# checks a live run's (the boot oracle_bochs_ept makes: its fixture).
add_executable(seg_oracle_check ${CMAKE_CURRENT_LIST_DIR}/seg_oracle_check.c)
target_link_libraries(seg_oracle_check PRIVATE vmem)
if(EXISTS ${PROJECT_SOURCE_DIR}/vtx/CMakeLists.txt)
  add_test(NAME oracle_bochs_seg
    COMMAND ${PROJECT_SOURCE_DIR}/vtx/check-bochs-seg.sh ${CMAKE_BINARY_DIR}/vtx $<TARGET_FILE:seg_oracle_check>
      ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-seg-v1.jsonl)
  set_tests_properties(oracle_bochs_seg PROPERTIES LABELS "oracle;unit"
    SKIP_RETURN_CODE 77 FIXTURES_REQUIRED bochs_run)
endif()
# The checker itself: KDS1, KDS2 and KDS3 recognised, an altered linear address and error code caught (needs no Bochs).
add_test(NAME seg_oracle_check_sample
  COMMAND seg_oracle_check ${CMAKE_CURRENT_SOURCE_DIR}/data/bochs-seg-sample.jsonl)
set_tests_properties(seg_oracle_check_sample PROPERTIES LABELS "oracle;unit" WILL_FAIL FALSE
  PASS_REGULAR_EXPRESSION "altered: linear \\+ 1.*Bochs 0x[0-9a-f]+, libvmem .*altered: TI flipped.*KDS1 1 .*KDS2 1 .*KDS3 1 .*5 passed, 2 failed")
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-seg-v1.jsonl)
  add_test(NAME corpus_bochs_seg_v1
    COMMAND seg_oracle_check ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-seg-v1.jsonl)
  set_tests_properties(corpus_bochs_seg_v1 PROPERTIES LABELS "oracle;unit;vectors"
    PASS_REGULAR_EXPRESSION "[1-9][0-9]* passed, 0 failed")
endif()
