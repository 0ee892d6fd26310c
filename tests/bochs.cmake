# Bochs oracle: the vtx bare-metal image runs EPT scenarios under Bochs 2.7's VMX/EPT; the vectors it prints,
# after the known-difference table (vtx/bochs_kd.c), must all agree with libvmem. And the shipped corpus those runs produced.
# vtx/ is added after tests/ (top-level CMakeLists.txt), so test for its source, not its target.
if(EXISTS ${PROJECT_SOURCE_DIR}/vtx/CMakeLists.txt AND TARGET vmem_cli)
  add_test(NAME oracle_bochs_ept
    COMMAND ${PROJECT_SOURCE_DIR}/vtx/run-bochs.sh ${CMAKE_BINARY_DIR}/vtx $<TARGET_FILE:vmem_cli>
      ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-ept-v1.jsonl)
  # 77 = Bochs not installed: reported as SKIPPED, never as a pass.
  set_tests_properties(oracle_bochs_ept PROPERTIES LABELS "oracle;unit"
    SKIP_RETURN_CODE 77 TIMEOUT 400 RUN_SERIAL TRUE)
endif()
if(TARGET vmem_cli AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-ept-v1.jsonl)
  add_test(NAME corpus_bochs_ept_v1
    COMMAND vmem_cli vectors check ${CMAKE_CURRENT_SOURCE_DIR}/corpus/bochs-ept-v1.jsonl)
  set_tests_properties(corpus_bochs_ept_v1 PROPERTIES LABELS "oracle;unit;vectors"
    PASS_REGULAR_EXPRESSION "[1-9][0-9]* passed, 0 failed")
endif()
