#!/usr/bin/env python3
"""gen_corpus_theirs: write the fuzz_theirs seed corpus (fuzz/corpus/theirs/): generated vectors of every kind and class, a few mutated (layout: fuzz/theirs_input.h)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "theirs")
WALK, EPT, NESTED = 0, 1, 2
M32, PAE, L4, L5 = 1, 2, 4, 8
(CR0, CR3, CR4, EFER, PKRU, MAXPHY, GBPAGES, ADDR, TYPE, CPL, FLAGS, LINEAR, EPTP, EPT_CTLS,
 COPY_WORD, DROP_WORD) = range(16)
MEM = 0x80  # | word index: XOR into that memory word


def seed(name, kind, modes, s, index, muts=()):
    data = bytes([kind | (modes << 2)]) + struct.pack("<QI", s, index)
    data += b"".join(struct.pack("<BQ", t, mask) for t, mask in muts)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    # Walk: one mode at a time, so index = class slot (17 slots, vectors.h).
    for i in range(17):
        seed(f"walk-4level-{i:02}", WALK, L4, 1, i)
    for name, mode in (("32bit", M32), ("pae", PAE), ("5level", L5)):
        for i in (0, 1, 6, 11, 12, 16):
            seed(f"walk-{name}-{i:02}", WALK, mode, 2, i)
    # EPT: 16 slots.
    for i in range(16):
        seed(f"ept-{i:02}", EPT, 0, 3, i)
    # Nested: 8 slots, index = 4 * slot + mode, the mode varying with the slot.
    for s in range(8):
        seed(f"nested-{s}", NESTED, 0, 4, 4 * s + s % 4)
    # Mutated: around a class, as the fuzzer explores.
    seed("mut-walk-smep-off", WALK, L4, 1, 15, [(CR4, 1 << 20)])
    seed("mut-walk-user", WALK, L4, 1, 0, [(CPL, 3), (TYPE, 1)])
    seed("mut-walk-entry", WALK, L4, 1, 0, [(MEM | 1, 1 << 63), (MEM | 2, 0x80)])
    seed("mut-walk-maxphy", WALK, PAE, 2, 0, [(MAXPHY, 5)])
    seed("mut-walk-copy-drop", WALK, L5, 2, 0, [(COPY_WORD, 0x8a8), (DROP_WORD, 3)])
    seed("mut-ept-ad", EPT, 0, 3, 0, [(EPTP, 1 << 6), (TYPE, 1)])
    seed("mut-ept-mbec", EPT, 0, 3, 1, [(EPT_CTLS, 3), (CPL, 3), (FLAGS, 4), (LINEAR, 0x7000)])
    seed("mut-nested-eptp", NESTED, 0, 4, 0, [(EPTP, 1 << 6), (PKRU, 0xc)])


if __name__ == "__main__":
    main()
