/* SPDX-License-Identifier: MIT */
/*
 * convert --salvage: read errors become zeros.
 *
 * As in qemu-img, a chunk whose read fails is read again one 512-byte
 * sector at a time, and only the sectors that fail on their own read as
 * zeros, so the output holds every byte the source can still give.
 * qemu-img prints a warning per failed sector; vdk-img records the failed
 * ranges (the workers run in parallel, in any order) and prints one
 * warning per range at the end, merged and in offset order, with its
 * length.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

struct salvage_rec {
    uint64_t off, len; /* in source si */
    size_t si;
    int err;           /* -errno */
    enum cvt_salvage_kind kind;
};

struct cvt_salvage {
    pthread_mutex_t lock;
    struct salvage_rec *rec;
    size_t n, cap;
};

int cvt_salvage_new(struct cvt_salvage **out)
{
    struct cvt_salvage *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return -ENOMEM;
    pthread_mutex_init(&sv->lock, NULL);
    *out = sv;
    return 0;
}

void cvt_salvage_free(struct cvt_salvage *sv)
{
    if (!sv)
        return;
    pthread_mutex_destroy(&sv->lock);
    free(sv->rec);
    free(sv);
}

int cvt_salvage_failed(struct cvt_salvage *sv, enum cvt_salvage_kind kind, size_t si,
                       uint64_t off, uint64_t len, int err)
{
    int r = 0;
    pthread_mutex_lock(&sv->lock);
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        struct salvage_rec *rec = cap > SIZE_MAX / sizeof(*rec) ? NULL
                                  : realloc(sv->rec, cap * sizeof(*rec));
        if (rec) {
            sv->rec = rec;
            sv->cap = cap;
        } else {
            r = -ENOMEM;
        }
    }
    if (r == 0)
        sv->rec[sv->n++] = (struct salvage_rec){ off, len, si, err, kind };
    pthread_mutex_unlock(&sv->lock);
    return r;
}

/* The source holding stream position pos, and pos within it. */
static size_t source_of(const struct cvt_params *p, uint64_t pos, uint64_t *soff)
{
    size_t i = 0;
    while (i + 1 < p->nsrc && pos >= p->src[i].size)
        pos -= p->src[i++].size;
    *soff = pos;
    return i;
}

int cvt_salvage_read(const struct cvt_params *p, uint64_t pos, uint64_t n, uint8_t *buf)
{
    /* A run of failed sectors with one errno, recorded when it ends. */
    size_t run_si = 0;
    uint64_t run_off = 0, run_len = 0;
    int run_err = 0, r = 0;
    for (uint64_t done = 0; done < n && r == 0; done += CVT_SECTOR) {
        uint64_t len = n - done < CVT_SECTOR ? n - done : CVT_SECTOR;
        uint64_t soff;
        size_t si = source_of(p, pos + done, &soff);
        int e = cvt_read(p->src[si].node, p->src[si].len, buf + done, len, soff);
        if (e < 0)
            memset(buf + done, 0, len);
        bool extends = run_len && e == run_err && si == run_si && soff == run_off + run_len;
        if (run_len && !extends) {
            r = cvt_salvage_failed(p->salvage, CVT_SALVAGE_READ, run_si, run_off, run_len,
                                   run_err);
            run_len = 0;
        }
        if (e < 0 && extends) {
            run_len += len;
        } else if (e < 0) {
            run_si = si;
            run_off = soff;
            run_len = len;
            run_err = e;
        }
    }
    if (r == 0 && run_len)
        r = cvt_salvage_failed(p->salvage, CVT_SALVAGE_READ, run_si, run_off, run_len, run_err);
    return r;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct salvage_rec *x = a, *y = b;
    if (x->si != y->si)
        return x->si < y->si ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

size_t cvt_salvage_report(struct cvt_salvage *sv, const struct cvt_params *p, bool quiet)
{
    if (!sv || !sv->n)
        return 0;
    qsort(sv->rec, sv->n, sizeof(*sv->rec), rec_cmp);
    /* Merge ranges that touch (a range cut by two chunks or workers). */
    size_t m = 0;
    for (size_t i = 0; i < sv->n; i++) {
        struct salvage_rec *last = m ? &sv->rec[m - 1] : NULL;
        const struct salvage_rec *c = &sv->rec[i];
        if (last && last->si == c->si && last->kind == c->kind && last->err == c->err &&
            last->off + last->len == c->off)
            last->len += c->len;
        else
            sv->rec[m++] = *c;
    }
    sv->n = m;
    for (size_t i = 0; i < m && !quiet; i++) {
        const struct salvage_rec *c = &sv->rec[i];
        img_error("warning: %s%s%serror while reading %soffset %" PRIu64 " (%" PRIu64
                  " bytes): %s", p->nsrc > 1 ? "'" : "", p->nsrc > 1 ? p->src[c->si].name : "",
                  p->nsrc > 1 ? "': " : "", c->kind == CVT_SALVAGE_STATUS ? "block status at " : "",
                  c->off, c->len, strerror(-c->err));
    }
    return m;
}
