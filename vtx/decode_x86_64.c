/* decode_x86_64.c: decode the one guest store the driver completes or drops itself: MOV r/m32/64, r32/64 (opcode 89) with a register-indirect memory operand (SDM vol. 2A, MOV; 2.1 and 2.2.1 for ModR/M and REX). */
#include "vm.h"

unsigned vtx_decode_mov_store(const uint8_t *insn, size_t n, bool code64, struct vtx_mov_store *out)
{
	size_t i = 0;
	unsigned rex = 0;
	/* 40-4F are REX in 64-bit mode only; in 32-bit code they are INC/DEC (2.2.1). */
	if (n && (insn[0] & 0xf0) == 0x40) {
		if (!code64)
			return 0;
		rex = insn[i++];
	}
	if (i + 2 > n || insn[i] != 0x89)
		return 0;
	uint8_t modrm = insn[i + 1];
	unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
	/* mod 11: a register destination; rm 100: a SIB byte; mod 00 rm 101: RIP-relative. */
	if (mod == 3 || rm == 4 || (mod == 0 && rm == 5))
		return 0;
	unsigned len = (unsigned)i + 2 + (mod == 1 ? 1 : mod == 2 ? 4 : 0);
	if (len > n)
		return 0;
	out->len = len;
	out->src = reg | ((rex & 4) ? 8 : 0); /* REX.R extends ModR/M.reg */
	out->size = (rex & 8) ? 8 : 4;         /* REX.W: 64-bit operand */
	out->base = rm | ((rex & 1) ? 8 : 0); /* REX.B extends ModR/M.rm */
	const uint8_t *d = insn + i + 2;
	out->disp = mod == 1 ? (int8_t)d[0] :
		    mod == 2 ? (int32_t)((uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 24) : 0;
	out->code64 = code64;
	return len;
}

uint64_t vtx_mov_store_la(const struct vtx_mov_store *m, const struct vtx_gprs *g)
{
	uint64_t ea = vtx_gpr_get(g, m->base) + (uint64_t)(int64_t)m->disp;
	if (m->code64)
		return ea;
	/* A base of EBP makes the operand SS-relative (SDM vol. 3A 3.7.4, Table 3-5; ESP needs a SIB: refused). */
	uint64_t base = vmcs_read(m->base == 5 ? GUEST_SS_BASE : GUEST_DS_BASE);
	return (uint32_t)(base + (uint32_t)ea);
}

bool vtx_mov_store_is_fault(const struct vtx_mov_store *m, const struct vtx_gprs *g, uint64_t la)
{
	return vtx_mov_store_la(m, g) == la;
}
