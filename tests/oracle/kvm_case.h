/* kvm_case.h: random 4-level paging cases for the KVM oracle (tables, registers, one access). */
#ifndef KVM_CASE_H
#define KVM_CASE_H

#include <stdbool.h>
#include <stdint.h>

#include "kvm_vm.h"

#define KVM_CASE_MAX_PAGES 5 /* PML4, PDPT, PD, PT, data page */
#define KVM_MAXPHYADDR 48

/* What the generator made an entry on the path. */
enum kvm_ent_kind {
	ENT_GOOD = 0,   /* present, no reserved bit: points on (or maps the page) */
	ENT_NP,         /* not present */
	ENT_RSVD_ADDR,  /* an address bit at or above MAXPHYADDR */
	ENT_RSVD_PS,    /* PS=1 in a PML4E, or in a PDPTE without 1-GByte pages */
	ENT_RSVD_ALIGN, /* 2-MByte leaf with bits 20:13 set */
	ENT_RSVD_XD     /* XD=1 with EFER.NXE=0 */
};

typedef struct kvm_case {
	uint64_t cr0, cr3, cr4, efer;
	uint64_t la;
	enum kvm_acc type;
	unsigned cpl;
	uint8_t wbyte;   /* byte a write stores */
	uint8_t marker;  /* byte a read must see at the translated address */

	/* Guest-physical pages of the case; host copies are 4 KiB aligned. */
	unsigned npages;
	uint64_t page_gpa[KVM_CASE_MAX_PAGES];
	unsigned char *page[KVM_CASE_MAX_PAGES];

	/* Path entries the walk reads, top level first (as generated). */
	unsigned npath;
	struct {
		uint64_t gpa, value;
		unsigned level;
		enum kvm_ent_kind kind;
	} path[4];

	bool mapped;        /* every path entry is good: the walk completes */
	uint64_t gpa;       /* mapped: guest-physical address of the access */
	uint64_t page_size; /* mapped: 4 KiB or 2 MiB */
	int data_page;      /* mapped: index of the data page in page[] */
} kvm_case;

/* Deterministic generator state (splitmix64). */
typedef struct kvm_rng {
	uint64_t s;
} kvm_rng;

uint64_t kvm_rng_next(kvm_rng *r);

/* Fill c with a random case. buf holds KVM_CASE_MAX_PAGES * 4096 bytes,
 * 4 KiB aligned; the case's pages live there. */
void kvm_case_gen(kvm_case *c, kvm_rng *r, unsigned char *buf);

/* Index of the page holding gpa, or -1. */
int kvm_case_page_of(const kvm_case *c, uint64_t gpa);

const char *kvm_acc_name(enum kvm_acc t);
const char *kvm_ent_kind_name(enum kvm_ent_kind k);

#endif
