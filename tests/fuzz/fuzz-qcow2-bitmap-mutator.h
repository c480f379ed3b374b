/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutator for fuzz-qcow2-bitmap (fuzz-mutator.h): finds
 * the bitmaps header extension, the bitmap directory it names, each
 * entry's bitmap table and the data clusters those name, and changes one
 * of them: the extension's count, directory size and offset; an entry's
 * table offset and size, flags (in use, auto, reserved), type,
 * granularity, name and extra data sizes; table entries (past the end,
 * onto metadata, the all-ones bit, reserved bits) and the bits of the
 * data.  Some changes keep the rest consistent so that they reach the
 * code behind the directory checks: an entry renamed, given extra data,
 * duplicated or dropped moves the entries after it and updates the
 * directory size and the count; a new granularity comes with the table
 * size it needs.  The qcow2 table mutations (fuzz-qcow2-mutator.h) run
 * one time in four.
 */
#ifndef VDK_FUZZ_QCOW2_BITMAP_MUTATOR_H
#define VDK_FUZZ_QCOW2_BITMAP_MUTATOR_H

#define FQ_CUSTOM_MUTATOR /* this header defines LLVMFuzzerCustomMutator */
#include "fuzz-qcow2-mutator.h"

#define FQB_EXT_BITMAPS 0x23852875u
#define FQB_ENTRY_HDR   24
#define FQB_MAX_ENTRY   (64u << 10) /* entries rewritten whole up to this */
#define FQB_MAX_WALK    1024u

struct fqb_dir {
    uint64_t ext;            /* the extension's header (type, length) */
    uint64_t nb, size, off;  /* count, directory size and offset */
    uint64_t at[FQB_MAX_WALK];  /* entries found in the input */
    unsigned n;
};

static uint64_t fqb_entry_len(const struct fmut *m, uint64_t at)
{
    return (FQB_ENTRY_HDR + fm_get(m, at + 20, 4, true) + fm_get(m, at + 18, 2, true) + 7) &
           ~7ull;
}

/* The extension and the entries of its directory that lie in the input. */
static bool fqb_find(const struct fmut *m, const struct fq_hdr *h, struct fqb_dir *d)
{
    uint64_t at = h->version == 3 ? fm_get(m, 100, 4, true) : 72;
    d->ext = 0;
    for (unsigned k = 0; k < 64 && fm_in(m, at, 8); k++) {
        uint64_t type = fm_get(m, at, 4, true), len = fm_get(m, at + 4, 4, true);
        if (type == 0)
            break;
        if (type == FQB_EXT_BITMAPS) {
            d->ext = at;
            break;
        }
        at += 8 + ((len + 7) & ~7ull);
    }
    if (!d->ext || !fm_in(m, d->ext + 8, 24))
        return false;
    d->nb = fm_get(m, d->ext + 8, 4, true);
    d->size = fm_get(m, d->ext + 16, 8, true);
    d->off = fm_get(m, d->ext + 24, 8, true);
    d->n = 0;
    uint64_t e = d->off, end = d->off + d->size;
    while (d->n < FQB_MAX_WALK && d->n < d->nb && e >= d->off && e < end &&
           fm_in(m, e, FQB_ENTRY_HDR)) {
        d->at[d->n++] = e;
        e += fqb_entry_len(m, e);
    }
    return true;
}

/*
 * Replace entry i (or insert before it, when insert) with the entry in
 * buf, moving what follows in the directory and updating the directory
 * size (and the count, when inserting).  false, changing nothing, when
 * the input has no room.
 */
static bool fqb_splice(struct fmut *m, const struct fqb_dir *d, unsigned i, const uint8_t *buf,
                       uint64_t len, bool insert)
{
    uint64_t at = i < d->n ? d->at[i] : d->off + d->size;
    uint64_t old = insert || i >= d->n ? 0 : fqb_entry_len(m, at);
    uint64_t end = d->off + d->size;
    if (end < at + old || end > m->size || end - old + len > m->size)
        return false;
    memmove(m->data + at + len, m->data + at + old, end - at - old);
    memcpy(m->data + at, buf, len);
    fm_put(m, d->ext + 16, 8, true, d->size - old + len);
    if (insert)
        fm_put(m, d->ext + 8, 4, true, d->nb + 1);
    return true;
}

/* Rewrite entry i with new extra data and name sizes; a longer name or
   extra data gets bytes from name (which may be NULL: 'x'). */
static bool fqb_resize(struct fmut *m, const struct fqb_dir *d, unsigned i, uint32_t extra,
                       uint16_t nlen, const uint8_t *name)
{
    uint64_t at = d->at[i];
    uint32_t oextra = (uint32_t)fm_get(m, at + 20, 4, true);
    uint16_t onlen = (uint16_t)fm_get(m, at + 18, 2, true);
    uint64_t len = (FQB_ENTRY_HDR + (uint64_t)extra + nlen + 7) & ~7ull;
    if (len > FQB_MAX_ENTRY || fqb_entry_len(m, at) > FQB_MAX_ENTRY)
        return false;
    uint64_t have = m->size - at;
    uint8_t *buf = calloc(1, len);
    if (!buf)
        return false;
    memcpy(buf, m->data + at, FQB_ENTRY_HDR);
    buf[18] = (uint8_t)(nlen >> 8), buf[19] = (uint8_t)nlen;
    for (int k = 0; k < 4; k++)
        buf[20 + k] = (uint8_t)(extra >> (24 - 8 * k));
    const uint8_t *src = m->data + at + FQB_ENTRY_HDR;
    for (uint32_t k = 0; k < extra; k++)
        buf[FQB_ENTRY_HDR + k] = k < oextra && FQB_ENTRY_HDR + k < have ? src[k] : (uint8_t)k;
    for (uint32_t k = 0; k < nlen; k++) {
        uint64_t from = (uint64_t)oextra + k;
        buf[FQB_ENTRY_HDR + extra + k] =
            name ? name[k] : k < onlen && FQB_ENTRY_HDR + from < have ? src[from] : 'x';
    }
    bool ok = fqb_splice(m, d, i, buf, len, false);
    free(buf);
    return ok;
}

/* Table entries a bitmap of granularity 2^gb needs (QEMU's rule). */
static uint64_t fqb_table_need(const struct fmut *m, const struct fq_hdr *h, unsigned gb)
{
    uint64_t size = fm_get(m, 24, 8, true);
    if (gb >= 64)
        return 1;
    uint64_t bits = (size >> gb) + ((size & ((1ull << gb) - 1)) != 0);
    return ((bits + 7) / 8 + h->cs - 1) / h->cs;
}

static bool fqb_step(struct fmut *m)
{
    struct fq_hdr h;
    static struct fqb_dir d; /* large; the mutator is not reentrant */
    if (!fq_header(m, &h) || !fqb_find(m, &h, &d))
        return false;
    uint64_t hot[7] = { 0, h.l1_off, h.rt_off, h.sn_off, d.off, d.ext, m->size };
    unsigned i = fm_rand(m, d.n ? d.n : 1);
    uint64_t e = d.n ? d.at[i] : 0;
    unsigned choice = fm_rand(m, 20);
    if (!d.n && choice >= 3)
        choice = fm_rand(m, 3);
    switch (choice) {
    case 0: { /* the extension: length, count, reserved, directory size */
        static const unsigned f[][2] = { { 4, 4 }, { 8, 4 }, { 12, 4 }, { 16, 8 } };
        unsigned k = fm_rand(m, 4);
        fm_field_mutate(m, d.ext + f[k][0], f[k][1], true);
        break;
    }
    case 1: { /* the directory offset */
        struct fm_table t = fq_table(&h, d.ext + 24, 1, ~0ull, 0, hot, 7);
        t.mask = ~0ull, t.shift = 0, t.unit = 1;
        if (fm_rand(m, 2))
            fm_table_mutate(m, &t);
        else
            fm_field_mutate(m, d.ext + 24, 8, true);
        break;
    }
    case 2: /* the autoclear bit that says the extension is current */
        if (h.version != 3)
            return false;
        m->data[95] ^= 1;
        break;
    case 3: /* drop the last entry, consistently */
        fm_put(m, d.ext + 8, 4, true, d.nb - 1);
        fm_put(m, d.ext + 16, 8, true, d.at[d.n - 1] - d.off);
        break;
    case 4: { /* a copy of an entry (same name, same table) at the end */
        uint64_t len = fqb_entry_len(m, e);
        if (len > FQB_MAX_ENTRY || !fm_in(m, e, (unsigned)len))
            return false;
        uint8_t *buf = malloc(len);
        if (!buf)
            return false;
        memcpy(buf, m->data + e, len);
        bool ok = fqb_splice(m, &d, d.n, buf, len, true);
        free(buf);
        if (!ok)
            return false;
        break;
    }
    case 5: case 6: { /* the table offset */
        struct fm_table t = fq_table(&h, e, 1, ~0x1ffull, 0, hot, 7);
        fm_table_mutate(m, &t);
        break;
    }
    case 7: { /* the table size: what it needs, one off, boundaries */
        uint64_t need = fqb_table_need(m, &h, m->data[e + 17]);
        static const uint64_t v[] = { 0, 1, 0x8000000, 0x8000001, 0xffffffff };
        switch (fm_rand(m, 4)) {
        case 0: fm_put(m, e + 8, 4, true, need + fm_rand(m, 3) - 1); break;
        case 1: fm_put(m, e + 8, 4, true, v[fm_rand(m, 5)]); break;
        default: fm_field_mutate(m, e + 8, 4, true); break;
        }
        break;
    }
    case 8: /* flags: in use, auto, extra data compatible, a reserved one */
        fm_put(m, e + 12, 4, true, fm_get(m, e + 12, 4, true) ^
               1u << (fm_rand(m, 2) ? fm_rand(m, 3) : fm_rand(m, 32)));
        break;
    case 9: { /* the type */
        static const uint8_t v[] = { 0, 1, 2, 0x80, 0xff };
        m->data[e + 16] = v[fm_rand(m, 5)];
        break;
    }
    case 10: case 11: { /* the granularity, with the table size it needs */
        static const uint8_t v[] = { 0, 8, 9, 10, 16, 20, 30, 31, 32, 63, 64, 255 };
        uint8_t gb = fm_rand(m, 3) ? (uint8_t)(h.cluster_bits + fm_rand(m, 5) - 2)
                                   : v[fm_rand(m, sizeof(v))];
        m->data[e + 17] = gb;
        uint64_t need = fqb_table_need(m, &h, gb);
        if (fm_rand(m, 4) && need <= fm_get(m, e + 8, 4, true))
            fm_put(m, e + 8, 4, true, need);
        break;
    }
    case 12: { /* the name: renamed (moving what follows), or a size alone */
        static const uint16_t v[] = { 0, 1, 7, 8, 1023, 1024, 1025, 65535 };
        uint16_t nlen = fm_rand(m, 2) ? v[fm_rand(m, 8)]
                                      : (uint16_t)(fm_get(m, e + 18, 2, true) + fm_rand(m, 17) - 8);
        if (fm_rand(m, 4))
            return fqb_resize(m, &d, i, (uint32_t)fm_get(m, e + 20, 4, true), nlen, NULL);
        fm_put(m, e + 18, 2, true, nlen);
        break;
    }
    case 13: { /* another entry's name: a duplicate; or a NUL in the name */
        uint64_t o = d.at[fm_rand(m, d.n)];
        uint16_t nlen = (uint16_t)fm_get(m, o + 18, 2, true);
        uint64_t name = o + FQB_ENTRY_HDR + fm_get(m, o + 20, 4, true);
        if (fm_rand(m, 3) && fm_in(m, name, nlen)) {
            uint8_t *copy = malloc(nlen + 1u);
            if (!copy)
                return false;
            memcpy(copy, m->data + name, nlen);
            bool ok = fqb_resize(m, &d, i, (uint32_t)fm_get(m, e + 20, 4, true), nlen, copy);
            free(copy);
            return ok;
        }
        uint64_t at = e + FQB_ENTRY_HDR + fm_get(m, e + 20, 4, true);
        uint16_t own = (uint16_t)fm_get(m, e + 18, 2, true);
        if (!own || !fm_in(m, at, own))
            return false;
        m->data[at + fm_rand(m, own)] = fm_rand(m, 2) ? 0 : 0xff;
        break;
    }
    case 14: { /* extra data: added (moving what follows), or a size alone */
        uint32_t extra = fm_rand(m, 2) ? 8 * (1 + fm_rand(m, 4)) : fm_rand(m, 9);
        if (fm_rand(m, 4))
            return fqb_resize(m, &d, i, extra, (uint16_t)fm_get(m, e + 18, 2, true), NULL);
        fm_field_mutate(m, e + 20, 4, true);
        break;
    }
    case 15: case 16: case 17: { /* a bitmap table entry */
        static const uint64_t specials[] = { 0, 1 };
        struct fm_table t = { .off = fm_get(m, e, 8, true), .count = fm_get(m, e + 8, 4, true),
                              .width = 8, .big = true, .unit = 512, .shift = 9,
                              .mask = 0x00fffffffffffe00ull, .flags = 1, .specials = specials,
                              .nspecials = 2, .hot = hot, .nhot = 7 };
        if (!fm_table_count(m, &t))
            return false;
        fm_table_mutate(m, &t);
        break;
    }
    default: { /* the bits of a data cluster one table entry names */
        uint64_t toff = fm_get(m, e, 8, true), tsize = fm_get(m, e + 8, 4, true);
        if (!tsize || !fm_in(m, toff, 8))
            return false;
        uint64_t te = fm_get(m, toff + 8 * (fm_rand64(m) % tsize), 8, true);
        uint64_t at = te & 0x00fffffffffffe00ull;
        if (!at || !fm_in(m, at, 1))
            return false;
        uint64_t room = m->size - at < h.cs ? m->size - at : h.cs;
        uint64_t p = fm_rand64(m) % room, run = 1 + fm_rand64(m) % (room - p);
        switch (fm_rand(m, 3)) {
        case 0: memset(m->data + at + p, 0xff, run); break;
        case 1: memset(m->data + at + p, 0, run); break;
        default: m->data[at + p] ^= (uint8_t)(1u << fm_rand(m, 8)); break;
        }
        break;
    }
    }
    return true;
}

/* Three times in four the bitmap structures, else the qcow2 tables. */
static bool fqb_any(struct fmut *m)
{
    if (fm_rand(m, 4) && fqb_step(m))
        return true;
    return fq_step(m);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, fqb_any, NULL);
}

#endif /* VDK_FUZZ_QCOW2_BITMAP_MUTATOR_H */
