/* Minimal <stdbool.h> for the freestanding core build (-nostdinc). */
#ifndef VMEM_FS_STDBOOL_H
#define VMEM_FS_STDBOOL_H
#define bool _Bool
#define true 1
#define false 0
#endif
