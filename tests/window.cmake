# window.cmake: the walker's window edge cases also on a CPU without BMI2 (the C window path behind the assembly).
vmem_add_unit_test(test_walk_window_nobmi2 ${CMAKE_CURRENT_LIST_DIR}/test_walk_window.c
  ${CMAKE_CURRENT_LIST_DIR}/support/cpu_no_bmi2.c)
