/* oracle_int.h: helpers the oracle scenario files share: the seeded generator, EPT path lookups, EPT variations, description text. */
#ifndef VTX_ORACLE_INT_H
#define VTX_ORACLE_INT_H

#include "oracle.h"

#define ADDR_MASK 0x000ffffffffff000ull
#define LVL_SIZE(l) (1ull << (12 + 9 * ((l) - 1)))
/* Guest paging-entry flags (SDM vol. 3A 4.3 to 4.5). */
#define G_P  (1ull << 0)
#define G_RW (1ull << 1)
#define G_US (1ull << 2)
#define G_A  (1ull << 5)
#define G_D  (1ull << 6)
#define G_PS (1ull << 7)
#define G_XD (1ull << 63)

/* xorshift64*, one stream for the whole run (seed VTX_SEED). */
uint64_t oracle_rnd(void);
/* Restart the stream (an oracle that must not depend on the ones before it). */
void oracle_rnd_seed(uint64_t seed);
unsigned oracle_rnd_below(unsigned n);
bool oracle_chance(unsigned percent);
/* A GPA in [2^39, 2^40): EPT PML4E 1, apart from the control region. */
uint64_t oracle_gpa_hi(void);
bool oracle_overlaps(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz);

/* The sink holds a tag in every word, so a read tells where it landed. */
uint64_t oracle_sink_tag(uint64_t hpa);
static inline uint64_t *oracle_hp(uint64_t hpa)
{
	return (uint64_t *)(uintptr_t)hpa;
}

/* EPT entries straight from the (identity-mapped) tables. */
uint64_t *oracle_ept_entry(uint64_t eptp, uint64_t gpa, unsigned level);
unsigned oracle_ept_leaf_level(uint64_t eptp, uint64_t gpa);
bool oracle_ept_writable(uint64_t eptp, uint64_t gpa);
void oracle_add_ept_path(struct oracle_words *w, uint64_t eptp, uint64_t gpa);

/* New EPT tables (A/D if `ad`, 1G leaves and execute-only as the
 * capabilities allow) with the control region mapped rwx. */
struct vmem_ept;
struct vmem_ept *oracle_ept_new(const struct vtx_caps *c, bool ad);
/* The final access's offset in its EPT leaf of `level` (1G: the leaf maps
 * HPA 0, the offset is into the sink); reads and writes 8-byte aligned. */
uint64_t oracle_final_off(unsigned level, enum oracle_access a);
/* Map the EPT leaf of `level` at region into the sink. */
void oracle_map_final(struct vmem_ept *ept, uint64_t region, unsigned level);
/* Guest code and its tables rewritten, the code's EPT path flags set, so
 * fetching the code changes nothing. */
void oracle_code_init(uint64_t eptp);

/* A scenario's description, the tail of the vector's id. */
struct oracle_desc {
	char s[200];
	unsigned n;
};
void d_add(struct oracle_desc *d, const char *t);
void d_num(struct oracle_desc *d, uint64_t v);

/* Change one EPT entry on gpa's path (leaf level `leaf` or above). */
bool oracle_mutate_ept(struct oracle_desc *d, uint64_t eptp, uint64_t gpa, unsigned leaf, const char *what,
		       unsigned maxphy);

/* KD2 (vtx/bochs_kd.c): with EPT A/D off, a guest entry changed although
 * its table's EPT path lacks W. entry[i] is in the table at gpa tgpa[i]. */
bool oracle_kd2(const struct oracle_words *w, uint64_t eptp, const uint64_t *entry, const uint64_t *tgpa,
		unsigned n);

/* What Bochs did with one access, and what it must show for an `ok`: the
 * access landed at fhpa (a read returned that word's tag, a write left the
 * marker there, a fetch executed the HLT there) and the guest stopped at its
 * HLT (CPL 0: a HLT exit; CPL 3: the HLT's #GP, SDM vol. 3C 26.1.1). */
struct oracle_check {
	const struct vtx_exit *e;
	enum oracle_access access;
	unsigned cpl;
	bool narrow;             /* 32-bit code: the read and write are 4 bytes */
	uint64_t la, fhpa;
	bool in_sink;
	uint64_t rax, marker, written; /* the read's result; the value the write stored, the word after */
	uint64_t hlt_rip;        /* the HLT after a read or write */
};
/* Fill v's result from the exit; NULL, or why Bochs' answer is not a vector. */
const char *oracle_classify(const struct oracle_check *k, struct oracle_vector *v, uint64_t *qual_bits);

/* Emit v, or print why scenario `id` (of `what`) gave no vector; returns
 * true if v was emitted. */
bool oracle_report(const char *what, unsigned id, const char *skip, const struct vtx_exit *e, const char *desc,
		   const uint64_t addr[3], const struct oracle_vector *v);

#endif
