/* SPDX-License-Identifier: MIT */
/*
 * Block status of an rbd image, from rbd_diff_iterate2.
 *
 * With a valid fast-diff, librbd answers per object from the object map,
 * but it reads that map from the cluster on every call: one OSD operation
 * per question, whatever the range.  The NBD server asks about every read
 * of 64 KiB and more (the zero-copy lookup, then the sparse read), so a
 * sequential reader of 256 KiB requests paid two OSD round trips per
 * request on top of the read itself.  So one question fills a window of
 * RBD_STATUS_CACHE_OBJECTS objects, and the questions after it that land
 * on objects the window saw holding data are answered from it.
 *
 * Only "data" is answered from the window, and only for
 * RBD_STATUS_CACHE_NS after the fill.  "Data" is always a safe answer: the
 * bytes are read, and read as zeros should another client have discarded
 * them since.  "Hole" is asked afresh every time, since another client
 * (or our own write) may have filled it.  Our own discards and zero
 * writes, a resize, a rollback and a reopen forget the window (and a fill
 * that raced with them is not kept).
 *
 * Without fast-diff, or with striping (objects then do not follow each
 * other in the image), every question goes to librbd, which lists the
 * exact extents of each object in the window asked about.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rbd/features.h>

#include "protocols/rbd.h"

/* Objects one fill covers (a bit each: 1 KiB; 32 GiB of 4 MiB objects). */
#define RBD_STATUS_CACHE_OBJECTS 8192u
/* How long "data" answers are taken from a fill. */
#define RBD_STATUS_CACHE_NS 1000000000ull

/* The extents of one window, collected (librbd may report them out of
   order) and bounded: the exact path, without fast-diff. */
#define RBD_STATUS_MAX_EXTENTS 4096
/* Window of one exact question: enough objects to skip big holes at once,
   few enough that an image without fast-diff (one listing per object)
   answers quickly. */
#define RBD_STATUS_WINDOW_OBJECTS 256

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vdk_rbd_status_init(struct rbd_state *s)
{
    pthread_mutex_init(&s->status.lock, NULL);
    s->status.ready = true;
}

void vdk_rbd_status_destroy(struct rbd_state *s)
{
    if (!s->status.ready)
        return;
    free(s->status.bits);
    s->status.bits = NULL;
    pthread_mutex_destroy(&s->status.lock);
    s->status.ready = false;
}

void vdk_rbd_status_forget(struct rbd_state *s)
{
    struct rbd_status_cache *c = &s->status;
    pthread_mutex_lock(&c->lock);
    c->gen++;
    c->count = 0;
    pthread_mutex_unlock(&c->lock);
}

static bool bit_at(const uint64_t *bits, uint64_t i)
{
    return (bits[i / 64] >> (i % 64)) & 1;
}

/* Bytes from offset (at most bytes) that the window says hold data, or 0
   when it does not know (stale, outside, or a hole then).  Under c->lock. */
static uint64_t cached_data(const struct rbd_status_cache *c, uint64_t obj, uint64_t offset,
                            uint64_t bytes)
{
    uint64_t o = offset / obj;
    if (!c->count || o < c->first || o - c->first >= c->count ||
        now_ns() - c->filled_ns > RBD_STATUS_CACHE_NS)
        return 0;
    uint64_t i = o - c->first, end = offset + bytes;
    if (!bit_at(c->bits, i))
        return 0;
    while (i < c->count && bit_at(c->bits, i) && (c->first + i) * obj < end)
        i++;
    uint64_t run_end = (c->first + i) * obj;
    return (run_end < end ? run_end : end) - offset;
}

struct fill {
    uint64_t first, count, obj;
    uint64_t *bits;
};

static int fill_cb(uint64_t off, size_t len, int exists, void *arg)
{
    struct fill *f = arg;
    if (!exists || !len)
        return 0;
    uint64_t a = off / f->obj, b = (off + len - 1) / f->obj;
    /* Bounded by the window whatever librbd reports. */
    if (a < f->first)
        a = f->first;
    if (b >= f->first + f->count)
        b = f->first + f->count - 1;
    for (uint64_t o = a; o <= b; o++)
        f->bits[(o - f->first) / 64] |= 1ull << ((o - f->first) % 64);
    return 0;
}

static int status_extents(struct rbd_state *s, uint64_t offset, uint64_t bytes,
                          bool whole_object, uint64_t *pnum);

/* Per-object status through the window (fast-diff valid, no striping). */
static int status_objects(struct vdk_node *n, struct rbd_state *s, uint64_t offset,
                          uint64_t bytes, uint64_t *pnum)
{
    struct rbd_status_cache *c = &s->status;
    const uint64_t obj = s->obj_size;
    pthread_mutex_lock(&c->lock);
    uint64_t run = cached_data(c, obj, offset, bytes);
    uint64_t gen = c->gen;
    pthread_mutex_unlock(&c->lock);
    if (run) {
        *pnum = run;
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    }
    /* Fill the aligned window holding offset's object (the same for every
       reader of an image of up to RBD_STATUS_CACHE_OBJECTS objects, so
       readers at different places do not take turns refilling it), and
       outside the lock: a stalled cluster must not queue every other
       question behind this one. */
    uint64_t o = offset / obj, n_obj = (n->size + obj - 1) / obj;
    if (o >= n_obj)
        return status_extents(s, offset, bytes, true, pnum); /* resized meanwhile */
    struct fill f = { .first = o - o % RBD_STATUS_CACHE_OBJECTS, .obj = obj };
    f.count = n_obj - f.first < RBD_STATUS_CACHE_OBJECTS ? n_obj - f.first
                                                          : RBD_STATUS_CACHE_OBJECTS;
    if (!(f.bits = calloc((f.count + 63) / 64, sizeof(uint64_t))))
        return -ENOMEM;
    uint64_t start = f.first * obj, len = n->size - start;
    if (len > f.count * obj)
        len = f.count * obj;
    int r = rbd_diff_iterate2(s->image, NULL, start, len, 1, 1, fill_cb, &f);
    if (r < 0) {
        free(f.bits);
        return r;
    }
    /* Answer from the fresh window: a run of objects alike. */
    uint64_t i = o - f.first, end = offset + bytes;
    bool data = bit_at(f.bits, i);
    while (i < f.count && bit_at(f.bits, i) == data && (f.first + i) * obj < end)
        i++;
    uint64_t run_end = (f.first + i) * obj;
    *pnum = (run_end < end ? run_end : end) - offset;
    pthread_mutex_lock(&c->lock);
    if (c->gen == gen) {
        free(c->bits);
        c->bits = f.bits;
        c->first = f.first;
        c->count = f.count;
        c->filled_ns = now_ns();
        f.bits = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(f.bits);
    return (data ? VDK_BS_DATA : VDK_BS_ZERO) | VDK_BS_OFFSET_VALID;
}

/* ---- the exact path: extents listed per object ---- */

struct diff_extents {
    uint64_t start, end;
    size_t n;
    bool overflow;
    uint64_t (*e)[2];
};

static int diff_cb(uint64_t off, size_t len, int exists, void *arg)
{
    struct diff_extents *d = arg;
    if (!exists || !len)
        return 0;
    uint64_t a = off < d->start ? d->start : off, b = off + len > d->end ? d->end : off + len;
    if (a >= b)
        return 0;
    if (d->n == RBD_STATUS_MAX_EXTENTS) {
        d->overflow = true;
        return -E2BIG; /* stops the iteration */
    }
    d->e[d->n][0] = a;
    d->e[d->n][1] = b;
    d->n++;
    return 0;
}

static int cmp_extent(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
    return x < y ? -1 : x > y;
}

static int status_extents(struct rbd_state *s, uint64_t offset, uint64_t bytes,
                          bool whole_object, uint64_t *pnum)
{
    uint64_t window = bytes;
    if (!whole_object && window > s->obj_size * RBD_STATUS_WINDOW_OBJECTS)
        window = s->obj_size * RBD_STATUS_WINDOW_OBJECTS;
    struct diff_extents d = { .start = offset, .end = offset + window };
    d.e = malloc(sizeof(*d.e) * RBD_STATUS_MAX_EXTENTS);
    if (!d.e)
        return -ENOMEM;
    int r = rbd_diff_iterate2(s->image, NULL, offset, window, 1, whole_object, diff_cb, &d);
    if (r < 0 && !d.overflow) {
        free(d.e);
        return r;
    }
    int ret;
    if (d.overflow) {
        /* More pieces than we keep: call the window data (it is read). */
        ret = VDK_BS_DATA | VDK_BS_OFFSET_VALID;
        *pnum = window;
    } else if (d.n == 0) {
        ret = VDK_BS_ZERO | VDK_BS_OFFSET_VALID;
        *pnum = window;
    } else {
        qsort(d.e, d.n, sizeof(*d.e), cmp_extent);
        if (d.e[0][0] > offset) {
            ret = VDK_BS_ZERO | VDK_BS_OFFSET_VALID;
            *pnum = d.e[0][0] - offset;
        } else {
            uint64_t end = d.e[0][1];
            for (size_t i = 1; i < d.n && d.e[i][0] <= end; i++)
                if (d.e[i][1] > end)
                    end = d.e[i][1];
            ret = VDK_BS_DATA | VDK_BS_OFFSET_VALID;
            *pnum = end - offset;
        }
    }
    free(d.e);
    return ret;
}

int vdk_rbd_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct rbd_state *s = n->opaque;
    *pnum = bytes;
    *map = offset;
    *file = n;
    bool whole_object = false;
    if (s->features & RBD_FEATURE_FAST_DIFF) {
        uint64_t flags = 0;
        whole_object = rbd_get_flags(s->image, &flags) == 0 &&
                       !(flags & RBD_FLAG_FAST_DIFF_INVALID);
    }
    if (whole_object && !(s->features & RBD_FEATURE_STRIPINGV2))
        return status_objects(n, s, offset, bytes, pnum);
    return status_extents(s, offset, bytes, whole_object, pnum);
}
