/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutator for fuzz-nbd (fuzz-mutator.h).  The input is
 * what a client sends: 4 bytes of client flags, option requests
 * ("IHAVEOPT", option, length, data), then transmission requests (magic,
 * flags, type, cookie, offset, length, and a write's payload), then
 * whatever follows.  A mutation splits the input into those items and
 * inserts a new option (every option the protocol defines and some it
 * does not, with export names, info requests and meta-context queries,
 * its length consistent or not) or request (every command, flags, offsets
 * and lengths at the export's edges, payloads of the right length or
 * not), or deletes, duplicates or swaps items, or changes an option's
 * length or a request's field or the client flags.
 */
#ifndef VDK_FUZZ_NBD_MUTATOR_H
#define VDK_FUZZ_NBD_MUTATOR_H

#include "fuzz-mutator.h"

#define FN_MAX_ITEMS 64
#define FN_OPT_MAGIC 0x49484156454f5054ull /* "IHAVEOPT" */
#define FN_REQ_MAGIC 0x25609513u

struct fn_item {
    size_t off, len;
    bool opt;
};

/* Split the input; returns the item count, *tail = where the rest starts. */
static unsigned fn_split(const struct fmut *m, struct fn_item *it, size_t *tail)
{
    size_t p = m->size < 4 ? m->size : 4;
    unsigned n = 0;
    while (n < FN_MAX_ITEMS && fm_in(m, p, 16) && fm_get(m, p, 8, true) == FN_OPT_MAGIC) {
        uint64_t len = fm_get(m, p + 12, 4, true);
        if (len > m->size - p - 16)
            break;
        it[n++] = (struct fn_item){ p, 16 + (size_t)len, true };
        p += 16 + (size_t)len;
    }
    while (n < FN_MAX_ITEMS && fm_in(m, p, 28) && fm_get(m, p, 4, true) == FN_REQ_MAGIC) {
        uint64_t len = 28;
        if (fm_get(m, p + 6, 2, true) == 1)            /* a write's payload */
            len += fm_get(m, p + 24, 4, true);
        if (len > m->size - p)
            break;
        it[n++] = (struct fn_item){ p, (size_t)len, false };
        p += (size_t)len;
    }
    *tail = p;
    return n;
}

/* Appenders into a bounded output buffer. */
struct fn_out {
    uint8_t *b;
    size_t len, max;
};

static void fn_put(struct fn_out *o, const void *p, size_t n)
{
    if (n > o->max - o->len)
        n = o->max - o->len;
    memcpy(o->b + o->len, p, n);
    o->len += n;
}

static void fn_be(struct fn_out *o, uint64_t v, unsigned width)
{
    uint8_t b[8];
    for (unsigned i = 0; i < width; i++)
        b[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
    fn_put(o, b, width);
}

static void fn_string(struct fmut *m, struct fn_out *o, const char *const *set, unsigned n)
{
    const char *s = set[fm_rand(m, n)];
    fn_be(o, strlen(s), 4);
    fn_put(o, s, strlen(s));
}

/* A new option request. */
static void fn_new_option(struct fmut *m, struct fn_out *o)
{
    static const uint32_t opts[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 12, 0x80000001u };
    static const char *const names[] = { "", "ro", "x", "memory://fuzz", "\xff\xfe" };
    static const char *const queries[] = { "base:allocation", "qemu:allocation-depth",
                                           "qemu:dirty-bitmap:b", "base:", "qemu:", "",
                                           "base:allocation:x" };
    uint8_t body[512];
    struct fn_out d = { body, 0, sizeof(body) };
    uint32_t opt = opts[fm_rand(m, sizeof(opts) / sizeof(opts[0]))];
    switch (opt) {
    case 1: {
        const char *s = names[fm_rand(m, 5)];
        fn_put(&d, s, strlen(s));
        break;
    }
    case 6: case 7:
        fn_string(m, &d, names, 5);
        {
            unsigned k = fm_rand(m, 4);
            fn_be(&d, k, 2);
            while (k--)
                fn_be(&d, fm_rand(m, 5), 2);
        }
        break;
    case 9: case 10:
        fn_string(m, &d, names, 5);
        {
            unsigned k = fm_rand(m, 4);
            fn_be(&d, k, 4);
            while (k--)
                fn_string(m, &d, queries, 7);
        }
        break;
    default:
        if (fm_rand(m, 4) == 0)
            fn_be(&d, fm_rand64(m), 4);   /* data an option takes none of */
        break;
    }
    uint64_t len = d.len;
    switch (fm_rand(m, 8)) {              /* mostly consistent */
    case 0: len = d.len + 1 + fm_rand(m, 4); break;
    case 1: len = d.len ? d.len - 1 : 0xffffffffu; break;
    case 2: d.len = d.len / 2; break;     /* data cut short */
    default: break;
    }
    fn_be(o, FN_OPT_MAGIC, 8);
    fn_be(o, opt, 4);
    fn_be(o, len, 4);
    fn_put(o, body, d.len);
}

/* A new transmission request against the 1 MiB exports. */
static void fn_new_request(struct fmut *m, struct fn_out *o)
{
    static const uint64_t offs[] = { 0, 1, 511, 512, 4096, (1u << 20) - 512, (1u << 20) - 1,
                                     1u << 20, (1u << 20) + 512, 1ull << 63, ~0ull };
    static const uint64_t lens[] = { 0, 1, 512, 513, 4096, 65536, 1u << 20, (32u << 20) + 1,
                                     0xffffffffu };
    uint16_t type = (uint16_t)fm_rand(m, 10);
    uint16_t flags = (uint16_t)(fm_rand(m, 3) ? 0 : 1u << fm_rand(m, 6));
    uint64_t off = fm_rand(m, 4) ? offs[fm_rand(m, 11)] : fm_rand64(m);
    uint64_t len = lens[fm_rand(m, 9)];
    fn_be(o, FN_REQ_MAGIC, 4);
    fn_be(o, flags, 2);
    fn_be(o, type, 2);
    fn_be(o, fm_rand64(m), 8);
    fn_be(o, off, 8);
    fn_be(o, len, 4);
    if (type == 1) {                      /* the payload, usually complete */
        uint64_t pay = len <= 65536 && fm_rand(m, 4) ? len : fm_rand(m, 1024);
        for (uint64_t i = 0; i < pay && o->len < o->max; i++)
            o->b[o->len++] = (uint8_t)i;
    }
}

static bool fn_step(struct fmut *m)
{
    struct fn_item it[FN_MAX_ITEMS];
    size_t tail;
    unsigned n = fn_split(m, it, &tail);
    uint8_t *buf = malloc(m->max);
    if (!buf)
        return false;
    struct fn_out o = { buf, 0, m->max };
    unsigned pos = fm_rand(m, n + 1), other = n ? fm_rand(m, n) : 0;
    unsigned op = fm_rand(m, 9);
    /* Options go before requests: an insertion point among them. */
    unsigned nopt = 0;
    while (nopt < n && it[nopt].opt)
        nopt++;
    if (op == 0 || op == 1)
        pos = fm_rand(m, nopt + 1);
    else if (op == 2 || op == 3)
        pos = nopt + fm_rand(m, n - nopt + 1);
    if (op == 8)                          /* client flags */
        fn_be(&o, fm_rand(m, 3) ? fm_rand(m, 4) : fm_rand64(m), 4);
    else
        fn_put(&o, m->data, m->size < 4 ? m->size : 4);
    for (unsigned i = 0; i <= n; i++) {
        if (i == pos) {
            if (op <= 1)
                fn_new_option(m, &o);
            else if (op <= 3)
                fn_new_request(m, &o);
            else if (op == 4 && n)         /* duplicate */
                fn_put(&o, m->data + it[other].off, it[other].len);
        }
        if (i == n)
            break;
        size_t at = o.len;
        if (op == 5 && i == pos)           /* delete */
            continue;
        if (op == 6 && n > 1 && i == pos) /* swap with another item */
            fn_put(&o, m->data + it[other].off, it[other].len);
        else if (op == 6 && n > 1 && i == other && pos < n)
            fn_put(&o, m->data + it[pos].off, it[pos].len);
        else
            fn_put(&o, m->data + it[i].off, it[i].len);
        if (op == 7 && i == pos && o.len - at >= 16) { /* a field of this item */
            struct fmut f = { o.b + at, o.len - at, o.len - at, m->rs };
            if (it[i].opt)
                fm_field_mutate(&f, 8 + 4 * fm_rand(m, 2), 4, true);
            else {
                static const unsigned fo[][2] = { { 4, 2 }, { 6, 2 }, { 16, 8 }, { 24, 4 } };
                unsigned k = fm_rand(m, 4);
                fm_field_mutate(&f, fo[k][0], fo[k][1], true);
            }
            m->rs = f.rs;
        }
    }
    fn_put(&o, m->data + tail, m->size - tail);
    memcpy(m->data, buf, o.len);
    m->size = o.len;
    free(buf);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, fn_step, NULL);
}

#endif /* VDK_FUZZ_NBD_MUTATOR_H */
