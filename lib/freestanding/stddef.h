/* Minimal <stddef.h> for the freestanding core build (-nostdinc). */
#ifndef VMEM_FS_STDDEF_H
#define VMEM_FS_STDDEF_H
typedef __SIZE_TYPE__ size_t;
typedef __PTRDIFF_TYPE__ ptrdiff_t;
#ifndef NULL
#define NULL ((void *)0)
#endif
#define offsetof(t, m) __builtin_offsetof(t, m)
#endif
