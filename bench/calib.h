/* Machine calibration: dependent-load latency at several working-set sizes. */
#ifndef BENCH_CALIB_H
#define BENCH_CALIB_H

/* Print a markdown table of ns per dependent load for working sets from
 * 16 KiB to 256 MiB (random cyclic pointer chase, huge-page backed). */
void calib_print(void);

#endif
