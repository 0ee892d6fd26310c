/* libvmem error codes: every fallible call returns one of these. */
#ifndef LIBVMEM_ERROR_H
#define LIBVMEM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Zero is success; every failure is negative so `if (err)` and `if (err < 0)`
 * both work. A call that fails leaves every structure it was given as it was. */
typedef enum vmem_err {
	VMEM_OK = 0,
	VMEM_E_NOMEM = -1,     /* the allocator hook returned NULL */
	VMEM_E_INVAL = -2,     /* an argument is out of its documented range */
	VMEM_E_OVERLAP = -3,   /* a new memory slot overlaps an existing one; dirty logs sharing a flag */
	VMEM_E_NOENT = -4,     /* no slot / entry / object at that address */
	VMEM_E_RANGE = -5,     /* an address is outside what was given */
	VMEM_E_UNSUPPORTED = -6, /* valid request the library does not model (yet) */
	VMEM_E_RETRY = -7,     /* a concurrent writer won a race too many times */
	VMEM_E_PARSE = -8,     /* malformed input (vectors, command line) */
	VMEM_E_IO = -9         /* a host file operation failed (hosted layer only) */
} vmem_err;

/* A short, static, human-readable name for an error code. Never NULL. */
const char *vmem_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
