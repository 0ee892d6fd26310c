/* theirs_input: build a fuzz_theirs vector: a generator picks realistic tables aimed at one class, records mutate them. */
#include "theirs_input.h"

#include <stdlib.h>
#include <string.h>
#include "fuzz_bytes.h"

#define MAX_WORDS 512

/* The value bits a word of this size holds. */
static uint64_t word_mask(unsigned size)
{
	return size == 4 ? 0xffffffffull : ~0ull;
}

static bool overlaps(const vmem_vector *v, uint64_t addr, unsigned size)
{
	for (size_t k = 0; k < v->n_mem; k++)
		if (addr < v->mem[k].addr + v->mem[k].size && v->mem[k].addr < addr + size)
			return true;
	return false;
}

/* A copy of an existing word elsewhere in its page: aliased and stray entries. */
static void copy_word(vmem_vector *v, uint64_t mask)
{
	if (!v->n_mem || v->n_mem >= MAX_WORDS)
		return;
	vmem_vector_word w = v->mem[(mask >> 16) % v->n_mem];
	w.addr = (w.addr & ~0xfffull) | (mask & 0xfff & ~(uint64_t)(w.size - 1));
	w.value ^= (mask >> 32) & word_mask(w.size);
	if (overlaps(v, w.addr, w.size))
		return;
	vmem_vector_word *grown = realloc(v->mem, (v->n_mem + 1) * sizeof(*grown));
	if (!grown)
		return;
	v->mem = grown;
	v->mem[v->n_mem++] = w;
}

static void drop_word(vmem_vector *v, uint64_t mask)
{
	if (!v->n_mem)
		return;
	size_t k = mask % v->n_mem;
	memmove(&v->mem[k], &v->mem[k + 1], (v->n_mem - k - 1) * sizeof(v->mem[0]));
	v->n_mem--;
}

/* Fields of the cpu and access blocks (every kind). */
static bool mutate_common(vmem_vector *v, unsigned t, uint64_t mask)
{
	switch (t) {
	case THEIRS_MUT_CR0: v->cpu.cr0 ^= mask; v->have |= VMEM_VHAVE_CR0; break;
	case THEIRS_MUT_CR3: v->cpu.cr3 ^= mask; v->have |= VMEM_VHAVE_CR3; break;
	case THEIRS_MUT_CR4: v->cpu.cr4 ^= mask; v->have |= VMEM_VHAVE_CR4; break;
	case THEIRS_MUT_EFER: v->cpu.efer ^= mask; v->have |= VMEM_VHAVE_EFER; break;
	case THEIRS_MUT_PKRU: v->cpu.pkru ^= (uint32_t)mask; v->have |= VMEM_VHAVE_PKRU; break;
	case THEIRS_MUT_MAXPHYADDR:
		v->cpu.maxphyaddr = 32 + (unsigned)(((v->cpu.maxphyaddr - 32) ^ mask) % 21);
		v->have |= VMEM_VHAVE_MAXPHYADDR;
		break;
	case THEIRS_MUT_GBPAGES: v->cpu.gbpages ^= mask & 1; v->have |= VMEM_VHAVE_GBPAGES; break;
	case THEIRS_MUT_ADDR: v->access.addr ^= mask; break;
	case THEIRS_MUT_TYPE: v->access.type = (vmem_vector_atype)((v->access.type ^ mask) % 3); break;
	case THEIRS_MUT_CPL: v->access.cpl = (unsigned)((v->access.cpl ^ mask) & 3); v->have |= VMEM_VHAVE_CPL; break;
	case THEIRS_MUT_FLAGS:
		v->access.implicit ^= mask & 1;
		v->access.ac ^= (mask >> 1) & 1;
		v->have |= VMEM_VHAVE_IMPLICIT | VMEM_VHAVE_AC;
		if (v->kind == VMEM_VKIND_EPT && (mask & 4))
			v->have ^= VMEM_VHAVE_LINEAR;
		break;
	case THEIRS_MUT_COPY_WORD: copy_word(v, mask); break;
	case THEIRS_MUT_DROP_WORD: drop_word(v, mask); break;
	default: return false;
	}
	return true;
}

/* The ept block (kinds ept and nested) and the guest-linear address (kind ept). */
static void mutate_ept(vmem_vector *v, unsigned t, uint64_t mask)
{
	if (v->kind == VMEM_VKIND_WALK)
		return;
	switch (t) {
	case THEIRS_MUT_LINEAR:
		if (v->kind == VMEM_VKIND_EPT) {
			v->access.linear ^= mask;
			v->have |= VMEM_VHAVE_LINEAR;
		}
		break;
	case THEIRS_MUT_EPTP: v->ept.eptp ^= mask; break;
	case THEIRS_MUT_EPT_CTLS:
		v->ept.mbec ^= mask & 1;
		v->ept.advanced_info ^= (mask >> 1) & 1;
		v->have |= VMEM_VHAVE_MBEC | VMEM_VHAVE_ADVINFO;
		break;
	}
}

static void mutate(vmem_vector *v, uint8_t target, uint64_t mask)
{
	if (target & 0x80) {
		if (v->n_mem) {
			vmem_vector_word *w = &v->mem[(target & 0x7f) % v->n_mem];
			w->value ^= mask & word_mask(w->size);
		}
		return;
	}
	unsigned t = target % THEIRS_MUT_COUNT;
	if (!mutate_common(v, t, mask))
		mutate_ept(v, t, mask);
}

vmem_err theirs_input_decode(const uint8_t *data, size_t size, vmem_vector *out)
{
	uint8_t h[THEIRS_HDR];
	memset(h, 0, sizeof(h));
	memcpy(h, data, size < THEIRS_HDR ? size : THEIRS_HDR);
	unsigned kind = (h[0] & 3) % 3;
	unsigned modes = (h[0] >> 2) & VMEM_VGEN_ALL;
	if (!modes)
		modes = VMEM_VGEN_ALL;
	uint64_t seed = fuzz_le(h + 1, 8);
	unsigned long index = (unsigned long)fuzz_le(h + 9, 4);
	vmem_err e;
	if (kind == VMEM_VKIND_WALK)
		e = vmem_vector_generate(seed, modes, index, out);
	else if (kind == VMEM_VKIND_EPT)
		e = vmem_vector_generate_ept(seed, index, out);
	else
		e = vmem_vector_generate_nested(seed, modes, index, out);
	if (e)
		return e;
	for (size_t off = THEIRS_HDR; off + THEIRS_REC <= size; off += THEIRS_REC)
		mutate(out, data[off], fuzz_le(data + off + 1, 8));
	free(out->expect.mem_after);
	memset(&out->expect, 0, sizeof(out->expect));
	out->expect.result = VMEM_VRES_OK;
	return VMEM_OK;
}
