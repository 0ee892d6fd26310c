/* libvmem error code names. */
#include <libvmem/error.h>

const char *vmem_strerror(int err)
{
	static const char *const names[] = {
		"success",
		"out of memory",
		"invalid argument",
		"overlaps an existing region",
		"no such entry",
		"address out of range",
		"not supported",
		"lost a race too many times",
		"malformed input",
		"I/O error",
	};
	int i = -err;
	if (i < 0 || i >= (int)(sizeof(names) / sizeof(names[0])))
		return "unknown error";
	return names[i];
}
