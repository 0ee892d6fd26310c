/* Differential check: libvmem against the baseline on page tables full of faults. */
#ifndef BENCH_FAULTS_H
#define BENCH_FAULTS_H

#include <stdint.h>

/* Walk n random addresses with random access kinds through randomly damaged
 * tables (not-present, read-only, supervisor, XD, reserved bits, PS, PAT,
 * A/D clear) in 4- and 5-level paging with NXE/WP on and off. libvmem and the
 * baseline each walk their own copy of the tables; every answer and the
 * final A/D state must match. Returns the number of disagreements. */
unsigned faults_run(unsigned n, uint64_t seed);

#endif
