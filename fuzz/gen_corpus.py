#!/usr/bin/env python3
"""gen_corpus: write the fuzz_walk seed corpus (fuzz/corpus/walk/) - one small valid guest per mode and fault kind."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "walk")
WP, PSE, SMEP, SMAP, PKE, NXE, GB, PGE = (1 << i for i in range(8))
READ, WRITE, FETCH = 0, 1, 2
CPL3, IMPL, AC, NO_AD, BATCH, LOAD = 4, 8, 16, 32, 64, 128
SET_REGS = 64


def seed(name, mode, flags, maxphy, acc, la, cr3=0, pkru=0, pdptes=(0, 0, 0, 0), words=(), miss_error=False):
    h = bytes([mode | (0x80 if miss_error else 0), flags, maxphy - 32, acc])  # mode may carry SET_REGS
    h += struct.pack("<IQQ4Q", pkru, la, cr3, *pdptes)
    body = b"".join(struct.pack("<HQ", gpa // 8, val) for gpa, val in words)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(h + body)


def w32(lo, hi=0):
    return lo | (hi << 32)


def main():
    os.makedirs(OUT, exist_ok=True)
    seed("none-read", 0, 0, 48, READ, 0x12345678)
    # 32-bit: la 0x00401234 -> PDE[1] at 0x4 -> PT 0x1000, PTE[1] at 0x1004 -> 0x5000
    pt32 = [(0x0, w32(0, 0x1007)), (0x1000, w32(0, 0x5007))]
    seed("32-4k-user-write", 1, WP, 36, WRITE | CPL3, 0x00401234, words=pt32)
    seed("32-4k-sup-fetch-smep", 1, SMEP, 36, FETCH, 0x00401234, words=pt32)
    # 32-bit PSE 4M with PSE-36 high bits: PDE[1] = 0x00c00000 | PA[33:32]=1 (bit 13) | PS | P,RW,US
    seed("32-4m-pse36", 1, PSE | WP, 36, READ | CPL3, 0x00412345, words=[(0x0, w32(0, 0x00c02087))])
    seed("32-4m-rsvd21", 1, PSE, 40, READ, 0x00412345, words=[(0x0, w32(0, 0x00e00087))])
    # PAE: PDPTE0 -> PD 0x1000; la 0x00201000 -> PDE[1] -> PT 0x2000, PTE[1] -> 0x5000
    pae = [(0x0, 0x1001), (0x1008, 0x2007), (0x2008, 0x8000000000005007)]
    seed("pae-4k-nx-fetch", 2, NXE, 36, FETCH | CPL3, 0x00201000, pdptes=(0x1001, 0, 0, 0), words=pae)
    seed("pae-2m-write", 2, WP, 36, WRITE, 0x00201000, pdptes=(0x1001, 0, 0, 0),
         words=[(0x0, 0x1001), (0x1008, 0x00400083)])
    seed("pae-pdpte-rsvd", 2, 0, 36, READ, 0x00201000, pdptes=(0x1003, 0, 0, 0), words=pae)
    seed("pae-load-pdptes", 2 | SET_REGS, NXE, 36, WRITE | LOAD, 0x00201000, cr3=0x20, words=pae + [(0x20, 0x1001)])
    seed("pae-load-gp", 2, 0, 36, READ | LOAD, 0x00201000, words=[(0x0, 0x1007)] + pae[1:])
    seed("pae-xd-rsvd", 2, 0, 36, READ, 0x00201000, pdptes=(0x1001, 0, 0, 0), words=pae)
    # 4-level: la 0x8040201000 -> PML4E[1] -> 0x1000, PDPTE[1] -> 0x2000, PDE[1] -> 0x3000, PTE[1] -> 0xabc000
    l4 = [(0x8, 0x1007), (0x1008, 0x2007), (0x2008, 0x3007), (0x3008, 0x800000000abc0007 | (1 << 59))]
    la4 = 0x8040201000
    seed("4l-4k-user-read", 3, WP | NXE, 48, READ | CPL3, la4, words=l4)
    seed("4l-4k-pk-write", 3, WP | NXE | PKE, 48, WRITE, la4, pkru=0x8, words=l4)
    seed("4l-4k-pk-ad", 3, NXE | PKE, 48, READ | CPL3, la4, pkru=0x4, words=l4)
    seed("4l-4k-smap-implicit", 3, SMAP | NXE, 48, READ | IMPL | CPL3 | AC, la4, words=l4)
    seed("4l-4k-smap-ac", 3, SMAP | NXE, 48, WRITE | AC, la4, words=l4)
    seed("4l-4k-noad", 3, NXE, 48, WRITE | NO_AD, la4, words=l4)
    seed("4l-4k-set-regs", 3 | SET_REGS, NXE | PKE, 48, WRITE | CPL3, la4, pkru=0x4, words=l4)
    seed("4l-4k-batch", 3, NXE, 48, WRITE | BATCH, la4, words=l4)
    seed("4l-4k-maxphy39", 3, NXE, 39, READ, la4, words=l4[:3] + [(0x3008, 0x0000008000abc007)])
    seed("4l-1g", 3, GB | WP, 48, WRITE | CPL3, la4, words=[(0x8, 0x1007), (0x1008, 0x40000087)])
    seed("4l-1g-nogb", 3, WP, 48, READ, la4, words=[(0x8, 0x1007), (0x1008, 0x40000087)])
    seed("4l-1g-misaligned", 3, GB, 48, READ, la4, words=[(0x8, 0x1007), (0x1008, 0x40002087)])
    seed("4l-2m-misaligned", 3, 0, 48, FETCH, la4, words=l4[:2] + [(0x2008, 0x00602087)])
    seed("4l-pml4-ps", 3, 0, 48, READ, la4, words=[(0x8, 0x1087)])
    seed("4l-noncanonical", 3, 0, 48, READ, 0x0000800000000000, words=l4)
    seed("4l-bad-gpa", 3, 0, 48, READ, la4, words=[(0x8, 0x123456007)], miss_error=True)
    seed("4l-recursive", 3, 0, 48, WRITE, 0, words=[(0x0, 0x0007)])
    # 5-level: PML5E[1] -> 0x1000 (PML4), PML4E[1] -> 0x2000 (PDPT), PDPTE[1] -> 0x3000 (PD), PDE[1] 2M
    l5 = [(0x8, 0x1007), (0x1008, 0x2007), (0x2008, 0x3007), (0x3008, 0x00a000e7)]
    seed("5l-2m-user-fetch", 4, NXE | SMEP, 52, FETCH | CPL3, (1 << 48) | la4, words=l5)
    seed("5l-noncanonical", 4, 0, 52, READ, 1 << 56, words=l5)


if __name__ == "__main__":
    main()
