/* Baseline page walker: 4-/5-level paging as a plain loop with plain ifs (SDM vol. 3A 4.5, 4.6, 4.7). */
#include "baseline_walk.h"

#define ADDR_MASK 0x000ffffffffff000ull /* bits 51:12 */

static unsigned fault(bl_result *res, unsigned access, const bl_cpu *cpu,
		      bool present, bool rsvd)
{
	uint32_t ec = 0;

	if (present)
		ec |= 1u; /* P: the fault was not caused by a not-present entry */
	if (access & BL_ACC_WRITE)
		ec |= 2u;
	if (access & BL_ACC_USER)
		ec |= 4u;
	if (rsvd)
		ec |= 8u;
	if ((access & BL_ACC_FETCH) && cpu->nxe)
		ec |= 16u;
	res->error_code = ec;
	res->status = BL_PF;
	return BL_PF;
}

unsigned bl_walk(const bl_mem *mem, const bl_cpu *cpu, uint64_t la,
		 unsigned access, unsigned flags, bl_result *res)
{
	const uint8_t *base = mem->base;
	const uint64_t size = mem->size;
	const bool nxe = cpu->nxe, gbpages = cpu->gbpages;
	/* Reserved in every present entry: bits 51:MAXPHYADDR, and XD without NXE. */
	uint64_t rsvd_all = ADDR_MASK & ~((1ull << cpu->maxphyaddr) - 1);
	if (!nxe)
		rsvd_all |= 1ull << 63;
	uint64_t table = cpu->cr3 & ADDR_MASK;
	unsigned level = cpu->levels;
	uint64_t *where[5];
	unsigned n = 0;
	bool w = true, u = true, x = true;
	uint64_t e;

	res->gpa = 0;
	res->page_size = 0;
	res->entry = 0;
	res->error_code = 0;
	res->level = 0;
	res->perms = 0;

	/* Canonical: bits 63 down to the top translated bit are all equal. */
	unsigned top = level == 5 ? 56 : 47;
	if ((uint64_t)((int64_t)(la << (63 - top)) >> (63 - top)) != la) {
		res->status = BL_GP;
		return BL_GP;
	}

	for (;;) {
		uint64_t egpa = table + ((la >> (12 + 9 * (level - 1))) & 511) * 8;
		if (egpa + 8 > size) {
			res->gpa = egpa;
			res->status = BL_BAD_GPA;
			return BL_BAD_GPA;
		}
		where[n++] = (uint64_t *)(base + egpa);
		e = *(const uint64_t *)(base + egpa);

		if (!(e & 1))
			return fault(res, access, cpu, false, false);

		bool ps = (e & 0x80) != 0;
		uint64_t rsvd = rsvd_all;
		if (ps) {
			if (level >= 4 || (level == 3 && !gbpages))
				rsvd |= 0x80;          /* no large page here */
			else if (level == 3)
				rsvd |= 0x3fffe000ull; /* 1G page: bits 29:13 */
			else if (level == 2)
				rsvd |= 0x1fe000ull;   /* 2M page: bits 20:13 */
		}
		if (e & rsvd)
			return fault(res, access, cpu, true, true);

		if (!(e & 2))
			w = false;
		if (!(e & 4))
			u = false;
		if (nxe && (e & (1ull << 63)))
			x = false;

		if (level == 1 || ps)
			break; /* the leaf (PS at level 4/5 faulted above; at level 1 it is PAT) */
		table = e & ADDR_MASK;
		level--;
	}
	uint64_t page_size = 1ull << (12 + 9 * (level - 1));

	/* Permissions (no SMEP, SMAP or protection keys in this model). */
	bool user = (access & BL_ACC_USER) != 0;
	bool write = (access & BL_ACC_WRITE) != 0;
	bool fetch = (access & BL_ACC_FETCH) != 0;
	if (user && !u)
		return fault(res, access, cpu, true, false);
	if (write && !w && (user || cpu->wp))
		return fault(res, access, cpu, true, false);
	if (fetch && !x)
		return fault(res, access, cpu, true, false);

	/* Accessed at every level, dirty in the leaf on a write. */
	if (!(flags & BL_NO_AD)) {
		for (unsigned i = 0; i < n; i++) {
			if (!(*where[i] & 0x20))
				*where[i] |= 0x20;
		}
		if (write && !(*where[n - 1] & 0x40))
			*where[n - 1] |= 0x40;
		e = *where[n - 1];
	}

	res->gpa = (e & ADDR_MASK & ~(page_size - 1)) | (la & (page_size - 1));
	res->page_size = page_size;
	res->entry = e;
	res->level = level;
	res->perms = (w ? 1u : 0u) | (u ? 2u : 0u) | (x ? 4u : 0u);
	res->status = BL_OK;
	return BL_OK;
}
