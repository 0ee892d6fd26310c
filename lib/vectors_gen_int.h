/* libvmem private: the vector generators' shared state and helpers (seeded random, unique frames, memory words). */
#ifndef VMEM_VECTORS_GEN_INT_H
#define VMEM_VECTORS_GEN_INT_H

#include "vectors_int.h"

#define VG_MAX_USED 64

/* One generator run: the vector being built and the frames handed out. */
typedef struct vg_gen {
	uint64_t rng;
	vmem_vector *v;
	size_t cap;                     /* of v->mem */
	uint64_t used[VG_MAX_USED][2];  /* [start, end) of each frame handed out */
	unsigned nused;
	unsigned maxphy;                /* physical addresses stay below 2^maxphy */
	bool oom;                       /* an allocation failed (reported at the end) */
} vg_gen;

/* Start vector `index` of a stream over the guest modes in modes_mask
 * (VMEM_VGEN_*): out initialised, *g ready, *mi the mode (index into the
 * walk generator's modes), *round = index / number of modes. VMEM_E_INVAL
 * for an empty or unknown mask. */
vmem_err vg_start(vg_gen *g, uint64_t seed, unsigned modes_mask, unsigned long index,
		  vmem_vector *out, unsigned *mi, unsigned long *round);
/* A generator for (seed, index) writing into v. */
void vg_init(vg_gen *g, uint64_t seed, unsigned long index, vmem_vector *v);
uint64_t vg_rnd(vg_gen *g);
unsigned vg_rndn(vg_gen *g, unsigned n);
bool vg_coin(vg_gen *g);
/* A fresh physical frame of `size` bytes (a power of two >= 4096, aligned to
 * it), below 2^maxphy, not 0 and overlapping no frame handed out before. */
uint64_t vg_frame(vg_gen *g, uint64_t size);
/* Forget the frames handed out (a new address space). */
void vg_frames_reset(vg_gen *g);
/* Set the memory word at addr (replacing a word already there). */
void vg_put(vg_gen *g, uint64_t addr, uint64_t val, unsigned width);
/* The value of the word at addr, or 0 when none is listed (memory not listed reads zero). */
uint64_t vg_get(const vg_gen *g, uint64_t addr);
/* Name the vector "gen-SEED-INDEX <what>", answer it with the library
 * (expect, mem_after) and report VMEM_E_NOMEM if anything failed; on error
 * the vector is freed. */
vmem_err vg_finish(vg_gen *g, uint64_t seed, unsigned long index, const char *what);

/* The guest side of a walk vector, as the walk generator builds it. */
typedef struct vg_guest {
	unsigned cls;        /* the walk generator's fault class (VG_GC_*) */
	unsigned at;         /* the level that faults or forbids (0: none) */
	unsigned leaf;       /* the leaf level */
	unsigned top;        /* the mode's top level */
	bool pae;            /* PAE paging: level 3 is the PDPTE registers */
	uint64_t table[6];   /* guest-physical address of the table at each level (top..leaf) */
	uint64_t frame;      /* the leaf's frame */
	uint64_t page_size;  /* the leaf's page size */
} vg_guest;

enum { VG_GC_OK, VG_GC_NP, VG_GC_RSVD, VG_GC_W, VG_GC_U, VG_GC_I, VG_GC_PK, VG_GC_SMEP, VG_GC_SMAP };

/* Number of fault-class slots the walk generator cycles through. */
unsigned vg_walk_slots(void);
/* Build registers, access and guest tables (words in g->v->mem, guest-
 * physical) for mode index mi (0 32-bit, 1 PAE, 2 4-level, 3 5-level) and
 * class slot `slot`; describe them in *out. Returns the text naming the
 * class ("4level np@L2 leaf L1"), in a static buffer of the caller (len). */
void vg_walk_guest(vg_gen *g, unsigned mi, unsigned slot, vg_guest *out, char *what, size_t len);

#endif
