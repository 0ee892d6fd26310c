/* kvm_seq_noshadow.c: stand-in for kvm_seq_shadow.c when the library is built without its shadow engine. */
#include "kvm_seq.h"

#include <stdio.h>

bool ksq_shadow_available(void)
{
	return false;
}

int ksq_shadow_run(const ksq_seq *q, const ksq_shadow_opts *o, unsigned char *pool,
		   ksq_out *out, ksq_shadow_stats *st, char *why, size_t n)
{
	(void)q;
	(void)o;
	(void)pool;
	(void)out;
	(void)st;
	snprintf(why, n, "libvmem was built without the shadow engine");
	return -1;
}
