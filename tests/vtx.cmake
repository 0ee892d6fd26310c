# The VT-x driver's main job: boot the vtx image in Bochs and require the demo guests' sentinel and exit counts; plus the host-side dispatcher tests on the soft VMX backend.
if(EXISTS ${PROJECT_SOURCE_DIR}/vtx/CMakeLists.txt)
  add_test(NAME vtx_main_bochs COMMAND ${PROJECT_SOURCE_DIR}/vtx/run-main-bochs.sh ${CMAKE_BINARY_DIR}/vtx)
  # 77 = Bochs not installed: reported as SKIPPED, never as a pass.
  set_tests_properties(vtx_main_bochs PROPERTIES LABELS "oracle;unit"
    SKIP_RETURN_CODE 77 TIMEOUT 120 RUN_SERIAL TRUE)
endif()
# The exit dispatcher on the host: the soft VMX backend stands in for the processor.
if(TARGET test_vtx_dispatch)
  target_sources(test_vtx_dispatch PRIVATE ${PROJECT_SOURCE_DIR}/vtx/exit.c ${PROJECT_SOURCE_DIR}/vtx/exit_ept.c
    ${PROJECT_SOURCE_DIR}/vtx/exit_shadow.c ${PROJECT_SOURCE_DIR}/vtx/exit_cr.c ${PROJECT_SOURCE_DIR}/vtx/exit_cpuid.c
    ${PROJECT_SOURCE_DIR}/vtx/exit_tsc.c ${PROJECT_SOURCE_DIR}/vtx/exit_hcall.c
    ${PROJECT_SOURCE_DIR}/vtx/decode_x86_64.c ${PROJECT_SOURCE_DIR}/vtx/vm.c ${PROJECT_SOURCE_DIR}/vtx/vmx_soft.c)
  target_include_directories(test_vtx_dispatch PRIVATE ${PROJECT_SOURCE_DIR}/vtx)
endif()
