/* Machine calibration: dependent-load latency at several working-set sizes. */
#ifndef BENCH_CALIB_H
#define BENCH_CALIB_H

#include <stddef.h>

/* Print a markdown table of ns per dependent load for working sets from
 * 16 KiB to 256 MiB (random cyclic pointer chase, huge-page backed). */
void calib_print(void);

/* ns per dependent load over a 16 KiB (L1-resident) random cycle, timed
 * over `steps` loads: the unit the walk times are also given in, so that
 * machines with different clocks compare. */
double calib_l1_ns(size_t steps);

/* ns per step of a chain of `steps` dependent 64-bit additions: one core
 * clock cycle on every x86 core (an ADD's latency is 1), so that walk times
 * can also be given in cycles, which compare cores of different clocks
 * better than ns (a walk that is not waiting on memory is bounded by how
 * many operations the core issues a cycle). */
double calib_cycle_ns(size_t steps);

/* Print one line naming the processor (Linux /proc/cpuinfo: model name,
 * family, model), so that a table says which machine it was timed on:
 * the targets' reference is a Zen 4 (family 25), and the same
 * code is slower per clock on older cores (on family 23, PEXT alone is
 * microcoded, tens of cycles). */
void calib_machine_print(void);

#endif
