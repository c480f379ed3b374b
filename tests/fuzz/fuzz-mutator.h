/* SPDX-License-Identifier: MIT */
/*
 * Plumbing shared by the structure-aware mutators (LLVMFuzzerCustomMutator)
 * of the fuzz targets whose inputs have structure: byte flips rarely make a
 * block-map entry that points at another table, a duplicate of another
 * entry or a flag a format reserves, and never get past a checksum.  A
 * mutator finds the structure in the input, changes a few of its fields
 * with the choices below and reseals what the format checksums; an input
 * without the structure (and one mutation in four) gets libFuzzer's byte
 * mutations instead.
 *
 * libFuzzer builds link libFuzzer's LLVMFuzzerMutate; the replay driver
 * (replay.c) supplies its own, and runs the custom mutator for half of its
 * deterministic mutations, so the fuzz-corpus suite replays structure-aware
 * variants of every seed too.
 */
#ifndef VDK_FUZZ_MUTATOR_H
#define VDK_FUZZ_MUTATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

/* One mutation: the input (changed in place; size may change up to max). */
struct fmut {
    uint8_t *data;
    size_t size, max;
    unsigned rs;      /* rand_r state */
};

static inline unsigned fm_rand(struct fmut *m, unsigned n)
{
    return n ? (unsigned)rand_r(&m->rs) % n : 0;
}

static inline uint64_t fm_rand64(struct fmut *m)
{
    return (uint64_t)rand_r(&m->rs) << 33 ^ (uint64_t)rand_r(&m->rs) << 11 ^
           (uint64_t)rand_r(&m->rs);
}

/* Bounds-checked field access (width 1-8 bytes, either byte order); a
   field outside the input reads 0 and is not written. */
static inline bool fm_in(const struct fmut *m, uint64_t off, unsigned width)
{
    return off <= m->size && m->size - off >= width;
}

static inline uint64_t fm_get(const struct fmut *m, uint64_t off, unsigned width, bool big)
{
    uint64_t v = 0;
    if (!fm_in(m, off, width))
        return 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)m->data[off + i] << (8 * (big ? width - 1 - i : i));
    return v;
}

static inline void fm_put(struct fmut *m, uint64_t off, unsigned width, bool big, uint64_t v)
{
    if (!fm_in(m, off, width))
        return;
    for (unsigned i = 0; i < width; i++)
        m->data[off + i] = (uint8_t)(v >> (8 * (big ? width - 1 - i : i)));
}

/*
 * A table of block-map entries in the input: count entries of width bytes
 * at off, stride bytes apart (0: packed).  An entry's (v & mask) >> shift
 * is a location in units of unit bytes (sectors, clusters, MiB ...) from
 * base; flags are the bits the format defines beside it, and every other
 * bit is reserved.  specials are values with a meaning of their own
 * (unallocated, zero).  hot are locations worth pointing at (the header,
 * the table itself, other metadata), in bytes.  file_len is the length of
 * the image the locations are in (0: the input's).
 */
struct fm_table {
    uint64_t off, count;
    unsigned width, stride;
    bool big;
    uint64_t unit, base, mask, flags, file_len;
    unsigned shift;
    const uint64_t *specials;
    unsigned nspecials;
    const uint64_t *hot;
    unsigned nhot;
};

static inline uint64_t fm_entry(const struct fmut *m, const struct fm_table *t, uint64_t i)
{
    return fm_get(m, t->off + i * (t->stride ? t->stride : t->width), t->width, t->big);
}

/* Entries of t that lie in the input. */
static inline uint64_t fm_table_count(const struct fmut *m, const struct fm_table *t)
{
    unsigned stride = t->stride ? t->stride : t->width;
    if (t->off >= m->size || m->size - t->off < t->width || !t->width)
        return 0;
    uint64_t fit = (m->size - t->off - t->width) / stride + 1;
    return t->count < fit ? t->count : fit;
}

/* An index, most often of an entry that is in use (not 0, not special). */
static inline uint64_t fm_pick(struct fmut *m, const struct fm_table *t, uint64_t n)
{
    uint64_t i = fm_rand64(m) % n;
    for (unsigned k = 0; k < 16 && fm_rand(m, 4); k++) {
        uint64_t j = fm_rand64(m) % n, v = fm_entry(m, t, j);
        bool special = false;
        for (unsigned s = 0; s < t->nspecials; s++)
            special |= v == t->specials[s];
        if (v && !special)
            return j;
    }
    return i;
}

/* Change one entry of t: the block-map corruptions every format shares. */
static inline void fm_table_mutate(struct fmut *m, const struct fm_table *t)
{
    uint64_t n = fm_table_count(m, t);
    if (!n)
        return;
    uint64_t i = fm_pick(m, t, n), v = fm_entry(m, t, i);
    uint64_t other = fm_entry(m, t, fm_rand64(m) % n);
    uint64_t unit = t->unit ? t->unit : 1;
    uint64_t len = t->file_len ? t->file_len : m->size;
    uint64_t loc = (v & t->mask) >> t->shift, eof = len > t->base ? (len - t->base) / unit : 0;
    uint64_t keep = v & ~t->mask;                      /* flags and reserved bits */
    uint64_t width_mask = t->width >= 8 ? ~0ull : (1ull << (8 * t->width)) - 1;
#define FM_LOC(l) (keep | (((uint64_t)(l) << t->shift) & t->mask))
    switch (fm_rand(m, 13)) {
    case 0: v = other; break;                           /* duplicate */
    case 1: v = FM_LOC(((other & t->mask) >> t->shift) + 1); break; /* overlap */
    case 2: v = FM_LOC(eof); break;                     /* at the end */
    case 3: v = FM_LOC(eof ? eof - 1 : 0); break;       /* the last unit */
    case 4: v = FM_LOC(eof + 1 + fm_rand(m, 1024)); break; /* past the end */
    case 5: v = FM_LOC(t->mask >> t->shift); break;     /* the largest */
    case 6:                                             /* onto metadata */
        if (t->nhot) {
            uint64_t h = t->hot[fm_rand(m, t->nhot)];
            v = FM_LOC(h > t->base ? (h - t->base) / unit : 0);
        }
        break;
    case 7:
        if (t->nspecials)
            v = t->specials[fm_rand(m, t->nspecials)];
        break;
    case 8:                                             /* a defined flag */
        if (t->flags) {
            unsigned b = fm_rand(m, 64);
            while (!(t->flags >> b & 1))
                b = (b + 1) % 64;
            v ^= 1ull << b;
        }
        break;
    case 9: {                                           /* a reserved bit */
        uint64_t rsv = ~(t->mask | t->flags) & width_mask;
        if (rsv) {
            unsigned b = fm_rand(m, 64);
            while (!(rsv >> b & 1))
                b = (b + 1) % 64;
            v ^= 1ull << b;
        }
        break;
    }
    case 10: v = FM_LOC(loc + 1); break;                /* off by one unit */
    case 11: v = FM_LOC(loc ? loc - 1 : 0); break;
    default: v = 0; break;
    }
#undef FM_LOC
    fm_put(m, t->off + i * (t->stride ? t->stride : t->width), t->width, t->big, v & width_mask);
}

/* Set a header field to a value near its own or a boundary value. */
static inline void fm_field_mutate(struct fmut *m, uint64_t off, unsigned width, bool big)
{
    static const uint64_t edge[] = { 0, 1, 2, 511, 512, 513, 4096, 65536, 1u << 20,
                                     0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
                                     0x7fffffffffffffffull, 0xffffffffffffffffull };
    uint64_t v = fm_get(m, off, width, big);
    switch (fm_rand(m, 5)) {
    case 0: v = edge[fm_rand(m, sizeof(edge) / sizeof(edge[0]))]; break;
    case 1: v += 1 + fm_rand(m, 8); break;
    case 2: v -= 1 + fm_rand(m, 8); break;
    case 3: v = v * 2 + fm_rand(m, 2); break;
    default: v ^= 1ull << fm_rand(m, 8 * width); break;
    }
    fm_put(m, off, width, big, v);
}

/*
 * The LLVMFuzzerCustomMutator body: step (the format's mutator: finds the
 * structure and makes one change; false when the input lacks it) runs one
 * to three times, then seal (may be NULL) reseals checksums.  One input in
 * four, and any input step does not recognise (four tries), gets byte
 * mutations.  step must change nothing when it returns false.
 */
static inline size_t fm_run(uint8_t *data, size_t size, size_t max, unsigned seed,
                            bool (*step)(struct fmut *m), void (*seal)(struct fmut *m))
{
    struct fmut m = { data, size, max, seed };
    bool ok = false;
    if (fm_rand(&m, 4) != 0)  /* a choice that found nothing to change: another */
        for (unsigned k = 0; k < 4 && !ok; k++)
            ok = step(&m);
    if (!ok)
        return LLVMFuzzerMutate(data, size, max);
    for (unsigned k = fm_rand(&m, 3); k; k--)
        step(&m);
    if (seal)
        seal(&m);
    return m.size;
}

#endif /* VDK_FUZZ_MUTATOR_H */
