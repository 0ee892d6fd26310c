# Vector tests beyond the unit tests: the vmem CLI end to end (label unit), plus memcheck of a check run.
set(VMEM_VEC_DATA ${CMAKE_CURRENT_SOURCE_DIR}/data)
foreach(t test_vectors_check test_vectors_parse)
  if(TARGET ${t})
    target_compile_definitions(${t} PRIVATE VMEM_TEST_DATA="${VMEM_VEC_DATA}")
  endif()
endforeach()

# vmem_cli_test(NAME EXPECT_RC MATCH-LIST ARGS... [GEN gen-args...])
function(vmem_cli_test name rc match)
  cmake_parse_arguments(P "" "" "GEN" ${ARGN})
  # Lists travel to the script joined with "@@" (a ';' would split the command line).
  string(REPLACE ";" "@@" args "${P_UNPARSED_ARGUMENTS}")
  string(REPLACE ";" "@@" match "${match}")
  set(defs -DVMEM=$<TARGET_FILE:vmem_cli> "-DARGS=${args}" -DEXPECT_RC=${rc} "-DMATCH=${match}")
  if(P_GEN)
    string(REPLACE ";" "@@" gen "${P_GEN}")
    list(APPEND defs "-DGEN_ARGS=${gen}" -DGEN_OUT=${CMAKE_CURRENT_BINARY_DIR}/${name}.jsonl)
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} ${defs} -P ${VMEM_VEC_DATA}/run_vmem.cmake)
  set_tests_properties(${name} PROPERTIES LABELS unit)
endfunction()

set(GEN_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
# Round trip: generate in one process, check in a fresh one (every mode, then each mode alone).
vmem_cli_test(vectors_gen_check_all 0 "(^|\n)680 passed, 0 failed\n"
  vectors check ${GEN_OUT_DIR}/vectors_gen_check_all.jsonl GEN --seed 7 --count 680 --mode all)
foreach(m 32 pae 4 5)
  vmem_cli_test(vectors_gen_check_${m} 0 "(^|\n)170 passed, 0 failed\n"
    vectors check ${GEN_OUT_DIR}/vectors_gen_check_${m}.jsonl GEN --seed 11 --count 170 --mode ${m})
endforeach()
# The shared real-oracle walk examples (KVM) all pass.
vmem_cli_test(vectors_check_examples_walk 0 "^8 passed, 0 failed\n"
  vectors check ${VMEM_VEC_DATA}/examples-walk-v1.jsonl)
# The shared real-oracle ept/nested examples (Bochs, with the SDM's value where it departs) all pass.
vmem_cli_test(vectors_check_examples_ept 0 "(^|\n)16 passed, 0 failed\n"
  vectors check ${VMEM_VEC_DATA}/examples-ept-nested-v1.jsonl)
# Kinds ept and nested, and all three kinds in turn: generated, then checked by a fresh process.
foreach(k ept nested all)
  vmem_cli_test(vectors_gen_check_kind_${k} 0 "(^|\n)480 passed, 0 failed\n"
    vectors check ${GEN_OUT_DIR}/vectors_gen_check_kind_${k}.jsonl GEN --seed 13 --count 480 --kind ${k})
endforeach()
vmem_cli_test(vmem_usage_bad_kind 2 "--kind must be walk, ept, nested or all" vectors gen --kind bogus)
# Expect-fail: a wrong expectation fails with a diff naming the fields.
vmem_cli_test(vectors_check_expect_fail nonzero
  "FAIL .*expect-fail.jsonl:2 wrong-gpa;gpa: expected 0x6000, got 0x5000;mem_after 0x4008: expected 0x5027, got 0x5067;level 1: entry at 0x4008 = 0x5007;\n0 passed, 1 failed\n"
  vectors check ${VMEM_VEC_DATA}/expect-fail.jsonl)
# A malformed line names file:line: field and counts as a failure.
vmem_cli_test(vectors_check_malformed nonzero
  "malformed.jsonl:3: cpu.cr3: expected a hex string;(^|\n)1 passed, 1 failed\n"
  vectors check ${VMEM_VEC_DATA}/malformed.jsonl)
# Usage errors exit 2; help exits 0.
vmem_cli_test(vmem_usage_unknown_option 2 "unknown option '--bogus'" vectors gen --bogus)
vmem_cli_test(vmem_usage_unknown_command 2 "unknown command" frobnicate)
vmem_cli_test(vmem_usage_no_files 2 "no FILE given" vectors check)
vmem_cli_test(vmem_usage_translate_missing 2 "--cr3 is required" translate --image x 0x1000)
vmem_cli_test(vmem_help 0 "vectors check FILE" --help)
vmem_cli_test(vmem_translate_help 0 "--image FILE" translate --help)
vmem_cli_test(vmem_dump_help 0 "--image FILE" dump --help)

# translate and dump on a committed image (data/image-4level.txt describes it, worked by hand).
set(IMG --image ${VMEM_VEC_DATA}/image-4level.bin --cr0 0x80010001 --cr3 0x1000 --cr4 0x20 --efer 0x500)
vmem_cli_test(vmem_translate_user_write 0
  "0x401234: gpa 0x6234, page 4K, rwx u\n;0x403000: page fault, error code 0x7 \\(P W U\\) at level 1;0x40000000: page fault, error code 0x7 \\(P W U\\) at level 3;level 4: entry at 0x1000 = 0x2007;level 1: entry at 0x4008 = 0x6007"
  translate ${IMG} --write --cpl 3 -v 0x401234 0x403000 0x40000000)
vmem_cli_test(vmem_translate_supervisor_read 0
  "0x800010: gpa 0x400010, page 2M, r-x u;0x40001234: gpa 0x40001234, page 1G, rwx s;0x405000: page fault, error code 0x9;0x500000: page fault, error code 0x0"
  translate ${IMG} 0x800010 0x40001234 0x405000 0x500000)
vmem_cli_test(vmem_dump_4level 0
  "\n0x0000000000400000..0x0000000000402fff -> 0x5000  4K x3  L1  rwx u\n0x0000000000403000..0x0000000000403fff -> 0x8000  4K x1  L1  r-x u\n! 0x0000000000405000: level 1 entry 0x8000000009007: page fault, error code 0x9\n0x0000000000600000..0x00000000009fffff -> 0x200000  2M x2  L2  r-x u\n0x0000000040000000..0x000000007fffffff -> 0x40000000  1G x1  L3  rwx s\n# 7 pages in 4 runs, 1 bad entries\n"
  dump ${IMG})
# Hostile images: a CR3 and entries pointing past the image's end are named, not skipped
# (image-4level.bin is 0x5000 bytes; as a PML4, its PT at 0x4000 points to 0x5000..0x9000).
set(IMG_RAW --image ${VMEM_VEC_DATA}/image-4level.bin --cr0 0x80010001 --cr4 0x20 --efer 0x500)
vmem_cli_test(vmem_dump_root_outside 0
  "! 0x0000000000000000: level 4 table at 0x100000 is outside the image\n# 0 pages in 0 runs, 1 bad entries\n"
  dump ${IMG_RAW} --cr3 0x100000)
vmem_cli_test(vmem_dump_entry_outside 0
  "! 0x0000000000000000: level 3 table at 0x5000 is outside the image\n;# 0 pages in 0 runs, 5 bad entries\n"
  dump ${IMG_RAW} --cr3 0x4000)
# A self-map: image-selfmap.bin is one 4 KiB table whose 512 entries all point
# to itself (0x27: P, R/W, U/S, A, frame 0). Expanded, it would list 512^4
# runs; each entry is named as recursive instead.
vmem_cli_test(vmem_dump_selfmap 0
  "^# 4-level paging, CR3 0x0\n~ 0x0000000000000000: level 4 entry 0x27 points back to the table at 0x0 on its path: a recursive mapping, not expanded\n;~ 0xffffff8000000000: level 4 entry 0x27;\n# 0 pages in 0 runs, 0 bad entries, 512 recursive entries not expanded\n$"
  dump --image ${VMEM_VEC_DATA}/image-selfmap.bin --cr0 0x80010001 --cr3 0x0 --cr4 0x20 --efer 0x500)
# --max-lines stops a listing (tables shared by many entries can make it huge) and says so.
vmem_cli_test(vmem_dump_max_lines 0
  "\n# stopped after 3 lines \\(--max-lines\\): the listing is incomplete\n# 0 pages in 0 runs, 0 bad entries, 3 recursive entries not expanded\n$"
  dump --image ${VMEM_VEC_DATA}/image-selfmap.bin --cr0 0x80010001 --cr3 0x0 --cr4 0x20 --efer 0x500 --max-lines 3)
vmem_cli_test(vmem_translate_bad_base 2 "--base must be 4 KiB aligned" translate ${IMG} --base 0x10 0x1000)

# The CLI's check path under Valgrind.
vmem_add_memcheck(vmem_cli vectors check ${VMEM_VEC_DATA}/examples-walk-v1.jsonl)

# The vector-reader fuzz target as a replay driver over its seeds (no clang needed).
add_executable(fuzz_vectors_replay ${PROJECT_SOURCE_DIR}/fuzz/fuzz_vectors.c
  ${PROJECT_SOURCE_DIR}/fuzz/replay_main.c)
target_link_libraries(fuzz_vectors_replay PRIVATE vmem)
file(GLOB VMEM_FUZZ_VECTORS_SEEDS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/fuzz/corpus/vectors/*)
add_test(NAME fuzz_vectors_replay COMMAND fuzz_vectors_replay ${VMEM_FUZZ_VECTORS_SEEDS})
set_tests_properties(fuzz_vectors_replay PROPERTIES LABELS unit)
vmem_add_memcheck(fuzz_vectors_replay ${VMEM_FUZZ_VECTORS_SEEDS})
