/* kvm_emit.h: write a KVM-answered case as a test vector (shared/spec/vectors.md, kind "walk"). */
#ifndef KVM_EMIT_H
#define KVM_EMIT_H

#include <stdio.h>

#include "kvm_answer.h"
#include "kvm_case.h"

/* One JSON line: cpu, access, the path entries the walk reads as mem, and
 * expect from KVM's answer (with mem_after). */
void kvm_emit_vector(FILE *f, const char *id, const kvm_case *c, const kvm_answer *a);

#endif
