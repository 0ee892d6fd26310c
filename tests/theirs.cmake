# theirs.cmake: fuzz/fuzz_theirs.c (a user's walker against libvmem) replayed over its seeds, against the references and against a wrong adapter.
set(VMEM_THEIRS_DIR ${PROJECT_SOURCE_DIR}/fuzz)
set(VMEM_THEIRS_HARNESS ${VMEM_THEIRS_DIR}/fuzz_theirs.c ${VMEM_THEIRS_DIR}/theirs_input.c
  ${VMEM_THEIRS_DIR}/replay_main.c ${VMEM_THEIRS_DIR}/theirs_ref.c
  ${CMAKE_CURRENT_LIST_DIR}/ref/ref_walk.c ${CMAKE_CURRENT_LIST_DIR}/ref/ref_ept.c)
file(GLOB VMEM_FUZZ_THEIRS_SEEDS CONFIGURE_DEPENDS ${VMEM_THEIRS_DIR}/corpus/theirs/*)
string(REPLACE ";" "@@" VMEM_THEIRS_SEEDS_ARG "${VMEM_FUZZ_THEIRS_SEEDS}")

# The default adapter (tests/ref behind fuzz/theirs.h): every seed must agree.
add_executable(fuzz_theirs_replay ${VMEM_THEIRS_HARNESS})
target_include_directories(fuzz_theirs_replay PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ref)
target_link_libraries(fuzz_theirs_replay PRIVATE vmem)
add_test(NAME fuzz_theirs_replay COMMAND ${CMAKE_COMMAND} -DREPLAY=$<TARGET_FILE:fuzz_theirs_replay>
  "-DSEEDS=${VMEM_THEIRS_SEEDS_ARG}" -DEXPECT=agree -P ${CMAKE_CURRENT_LIST_DIR}/data/run_theirs.cmake)
set_tests_properties(fuzz_theirs_replay PROPERTIES LABELS unit)
vmem_add_memcheck(fuzz_theirs_replay ${VMEM_FUZZ_THEIRS_SEEDS})

# A deliberately wrong adapter (fuzz/theirs_wrong.c): the harness must abort and
# print a vector that `vmem vectors check` fails, and libvmem's that it passes.
add_executable(fuzz_theirs_wrong_replay ${VMEM_THEIRS_HARNESS} ${VMEM_THEIRS_DIR}/theirs_wrong.c)
target_compile_definitions(fuzz_theirs_wrong_replay PRIVATE THEIRS_REF_ENTRY=theirs_ref_answer)
target_include_directories(fuzz_theirs_wrong_replay PRIVATE ${CMAKE_CURRENT_LIST_DIR}/ref)
target_link_libraries(fuzz_theirs_wrong_replay PRIVATE vmem)
add_test(NAME fuzz_theirs_catches_wrong COMMAND ${CMAKE_COMMAND}
  -DREPLAY=$<TARGET_FILE:fuzz_theirs_wrong_replay> "-DSEEDS=${VMEM_THEIRS_SEEDS_ARG}"
  -DEXPECT=disagree -DVMEM=$<TARGET_FILE:vmem_cli> -DWORK=${CMAKE_CURRENT_BINARY_DIR}
  -P ${CMAKE_CURRENT_LIST_DIR}/data/run_theirs.cmake)
set_tests_properties(fuzz_theirs_catches_wrong PROPERTIES LABELS unit)
