/* SPDX-License-Identifier: MIT */
/*
 * qcow2 persistent dirty bitmaps: storing them on a flush or a clean
 * close, and the "in use" protocol between the writers that set new bits
 * and the store (rules and states in qcow2-bitmap.h).
 *
 * A store without a structural change writes only the data clusters whose
 * bits changed since the last one, in place: the directory says "in use"
 * meanwhile, so no reader trusts them.  New data clusters (a range of
 * chunks dirty for the first time) are allocated, their refcounts flushed
 * before the table entries that name them are written.  After a flush of
 * all that, the directory is rewritten in place with the flag cleared.
 * On a flush of the node that flush is the node's own flush of its file
 * (qcow2_bitmaps_flush_begin/_end), so a store adds no flush of its own:
 * the clear is written after it and made durable by the next one, and a
 * power loss meanwhile leaves the flag set, which is the safe side.
 *
 * Stores on flush are rate-limited (bitmap-store-ms): a guest that
 * flushes after every write into a new chunk would otherwise pay per
 * cycle for the bitmap data, and for a write and a flush to set the flag
 * again.  A flush less than that after the last store leaves its store
 * to a thread, which does it (with its own flushes) once that time has
 * passed; meanwhile the flag stays set, and writers that set new bits
 * find it so and pay nothing.  Control operations first do a postponed
 * store (qcow2_bitmaps_settle), so the thread never runs beside them.
 *
 * The directory is rewritten in place without the autoclear dance of the
 * open: only the flags change, a 4-byte field at offset 12 of an entry
 * aligned to 8 bytes, so no sector boundary splits it; a torn write leaves
 * each entry with its old or its new flags, and either is true of the
 * data on disk at that moment.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

static bool tracked(const struct qcow2_bitmap *b)
{
    return b->enabled && b->loaded && !b->inconsistent;
}

/* The directory in place with every flag "in use" or as stored. */
static int write_flags(struct vdk_node *n, bool in_use, bool sync)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    uint64_t size;
    uint8_t *d = qcow2_bitmaps_build_directory(s, in_use, &size);
    if (!d)
        return -ENOMEM;
    /* Only a structural change alters the size, and that store writes a
       fresh directory instead. */
    int r = size == b->dir_size ? vdk_pwrite(n->file, d, size, b->dir_offset, 0) : -EIO;
    free(d);
    if (r == 0 && sync)
        r = vdk_flush(n->file);
    return r;
}

/* "In use" on disk before the caller changes bits; mark_lock held for
   reading, so no store moves the state meanwhile but other writers may. */
static int ensure_locked(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    int st = __atomic_load_n(&b->disk, __ATOMIC_ACQUIRE);
    if (st == QCOW2_BM_DISK_DIRTY)
        return 0;
    if (st == QCOW2_BM_DISK_PENDING) {
        /* The disk still says "in use": cancel the store's clear. */
        __atomic_compare_exchange_n(&b->disk, &st, QCOW2_BM_DISK_DIRTY, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        return 0;
    }
    int r = 0;
    pthread_mutex_lock(&b->flag_lock);
    if (__atomic_load_n(&b->disk, __ATOMIC_ACQUIRE) == QCOW2_BM_DISK_CLEAN) {
        /* Durable before any write that the new bits cover. */
        r = write_flags(n, true, true);
        if (r == 0)
            __atomic_store_n(&b->disk, QCOW2_BM_DISK_DIRTY, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&b->flag_lock);
    return r;
}

int qcow2_bitmaps_ensure_in_use(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b || !s->writable)
        return 0;
    int r = qcow2_bitmaps_settle(n);
    if (r < 0)
        return r;
    pthread_rwlock_rdlock(&b->mark_lock);
    r = ensure_locked(n);
    pthread_rwlock_unlock(&b->mark_lock);
    return r;
}

int qcow2_bitmaps_mark_slow(struct vdk_node *n, uint64_t off, uint64_t bytes)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *bs = s->bitmaps;
    uint64_t f, l;
    uint32_t i = 0;
    /* Fast path: every chunk already set (a store that cleared the flag
       on disk has them, or the flag is still set). */
    for (; i < bs->nb; i++) {
        const struct qcow2_bitmap *b = &bs->bm[i];
        if (tracked(b) && qcow2_bitmap_chunks(b, off, bytes, &f, &l) &&
            !qcow2_bits_all_set(b->words, f, l))
            break;
    }
    if (i == bs->nb)
        return 0;
    pthread_rwlock_rdlock(&bs->mark_lock);
    int r = ensure_locked(n);
    for (; r == 0 && i < bs->nb; i++) {
        struct qcow2_bitmap *b = &bs->bm[i];
        if (!tracked(b) || !qcow2_bitmap_chunks(b, off, bytes, &f, &l))
            continue;
        /* Chunk c lives in data unit (c / 8) >> unit_bits. */
        unsigned shift = b->unit_bits + 3;
        if (qcow2_bits_set(b->words, f, l))
            qcow2_bits_set(b->dirty, f >> shift, l >> shift);
    }
    pthread_rwlock_unlock(&bs->mark_lock);
    return r;
}

static bool all_bytes(const uint8_t *p, uint64_t len, uint8_t v)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != v)
            return false;
    return true;
}

static bool noted(const struct qcow2_bitmap *bm, uint64_t u)
{
    return bm->writing[u / 64] >> (u % 64) & 1;
}

/* The first k' >= k below un whose unit u0 + k' is noted (un if none). */
static uint64_t next_noted(const struct qcow2_bitmap *bm, uint64_t u0, uint64_t k,
                           uint64_t un)
{
    while (k < un && !noted(bm, u0 + k))
        k++;
    return k;
}

/* The units of bm noted in bm->writing: in place, or their whole cluster
   to a new one; *t is bm's table with the new entries, *lo..*hi the
   entries changed. */
static int write_data(struct vdk_node *n, struct qcow2_bitmap *bm, uint8_t *buf,
                      uint64_t **t, uint64_t *lo, uint64_t *hi, bool *alloc)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, bytes = (bm->nbits + 7) / 8;
    uint64_t per = cs >> bm->unit_bits, unit = 1ull << bm->unit_bits;
    int r = qcow2_bitmap_read_table(n, bm->table_offset, bm->table_size, t);
    *lo = UINT64_MAX;
    *hi = 0;
    for (uint64_t u0 = 0; r == 0 && u0 < bm->nunits; u0 += per) {
        uint64_t c = u0 / per, un = vdk_min_u64(per, bm->nunits - u0);
        uint64_t k = next_noted(bm, u0, 0, un);
        if (k == un)
            continue;
        uint64_t at = c * cs;
        if (c >= bm->table_size || at >= bytes)
            return -EIO;
        uint64_t len = vdk_min_u64(cs, bytes - at);
        uint64_t e = (*t)[c], o = e & QCOW2_BME_TE_OFFSET;
        if (o) {
            /* In place: each run of noted units in one write (cut at the
               sector that holds the bitmap's last byte).  The offset comes
               from the image: never over its metadata (a damaged table
               entry would otherwise have the store overwrite, say, the L1
               table); such an image is marked corrupt instead. */
            pthread_mutex_lock(&s->lock);
            r = qcow2_check_overlap(n, o, cs);
            pthread_mutex_unlock(&s->lock);
            while (r == 0 && k < un) {
                uint64_t k2 = k + 1;
                while (k2 < un && noted(bm, u0 + k2))
                    k2++;
                uint64_t rat = k * unit, rlen = vdk_min_u64(k2 * unit, len) - rat;
                memset(buf, 0, (k2 - k) * unit);
                qcow2_bitmap_data(bm, buf, at + rat, rlen);
                r = vdk_pwrite(n->file, buf, vdk_align_up(rlen, 512), o + rat, 0);
                k = next_noted(bm, u0, k2, un);
            }
            continue;
        }
        memset(buf, 0, cs);
        qcow2_bitmap_data(bm, buf, at, len);
        if (all_bytes(buf, len, 0) ||
            ((e & QCOW2_BME_TE_ALL_ONES) && all_bytes(buf, len, 0xff)))
            continue;
        pthread_mutex_lock(&s->lock);
        int64_t a = qcow2_alloc_clusters(n, 1);
        pthread_mutex_unlock(&s->lock);
        if (a < 0)
            return (int)a; /* a leak at most, reclaimed by check -r */
        o = (uint64_t)a;
        (*t)[c] = o;
        *lo = vdk_min_u64(*lo, c);
        *hi = c > *hi ? c : *hi;
        *alloc = true;
        r = vdk_pwrite(n->file, buf, cs, o, 0);
    }
    return r;
}

static int write_table_range(struct vdk_node *n, const struct qcow2_bitmap *bm,
                             const uint64_t *t, uint64_t lo, uint64_t hi)
{
    uint64_t cnt = hi - lo + 1;
    uint8_t *p = malloc(cnt * 8);
    if (!p)
        return -ENOMEM;
    for (uint64_t i = 0; i < cnt; i++)
        q_st64(p + i * 8, t[lo + i]);
    int r = vdk_pwrite(n->file, p, cnt * 8, bm->table_offset + lo * 8, 0);
    free(p);
    return r;
}

/* Data, then (refcounts of new clusters on disk first) tables, then a
   flush if `sync`: everything noted in the `writing` arrays is on disk
   after (without `sync`, after the caller's next flush of the file). */
static int write_noted(struct vdk_node *n, bool sync)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *bs = s->bitmaps;
    uint8_t *buf = malloc(s->cluster_size);
    uint32_t nb = bs->nb ? bs->nb : 1;
    uint64_t **tabs = calloc(nb, sizeof(*tabs));
    uint64_t *lo = calloc(nb, sizeof(*lo)), *hi = calloc(nb, sizeof(*hi));
    int r = buf && tabs && lo && hi ? 0 : -ENOMEM;
    bool alloc = false, wrote = false;
    for (uint32_t i = 0; r == 0 && i < bs->nb; i++) {
        struct qcow2_bitmap *bm = &bs->bm[i];
        lo[i] = UINT64_MAX;
        if (!bm->loaded || bm->inconsistent || !bm->writing ||
            !qcow2_bits_any(bm->writing, bm->nunits))
            continue;
        r = write_data(n, bm, buf, &tabs[i], &lo[i], &hi[i], &alloc);
        wrote = true;
    }
    if (r == 0 && alloc) {
        pthread_mutex_lock(&s->lock);
        r = qcow2_flush_metadata(n);
        pthread_mutex_unlock(&s->lock);
        if (r == 0)
            r = vdk_flush(n->file);
    }
    for (uint32_t i = 0; r == 0 && i < bs->nb; i++)
        if (tabs[i] && lo[i] <= hi[i])
            r = write_table_range(n, &bs->bm[i], tabs[i], lo[i], hi[i]);
    if (r == 0 && wrote && sync)
        r = vdk_flush(n->file);
    for (uint32_t i = 0; tabs && i < bs->nb; i++)
        free(tabs[i]);
    free(tabs);
    free(lo);
    free(hi);
    free(buf);
    return r;
}

/* Move the noted clusters of every bitmap between `dirty` and `writing`:
   start (dirty -> writing), failed (writing ORed back), done (cleared).
   mark_lock held for writing. */
enum note_step { NOTE_START, NOTE_FAILED, NOTE_DONE };
static void move_notes(struct qcow2_bitmaps *bs, enum note_step step)
{
    for (uint32_t i = 0; i < bs->nb; i++) {
        struct qcow2_bitmap *bm = &bs->bm[i];
        if (!bm->dirty)
            continue;
        uint64_t nw = (bm->nunits + 63) / 64;
        if (step == NOTE_START) {
            uint64_t *t = bm->writing;
            bm->writing = bm->dirty;
            bm->dirty = t; /* all clear since the last store ended */
            continue;
        }
        for (uint64_t w = 0; step == NOTE_FAILED && w < nw; w++)
            bm->dirty[w] |= bm->writing[w];
        memset(bm->writing, 0, nw * 8);
    }
}

/* The clear that ends a store, if no new bit arrived since its notes
   were taken (the state is still PENDING); mark_lock held for writing.
   Even if this write fails the data on disk is complete, so CLEAN
   (writers then set "in use" again before new bits) is safe either way. */
static int clear_if_pending(struct vdk_node *n, bool sync)
{
    struct qcow2_bitmaps *bs = ((struct qcow2_state *)n->opaque)->bitmaps;
    if (__atomic_load_n(&bs->disk, __ATOMIC_ACQUIRE) != QCOW2_BM_DISK_PENDING)
        return 0;
    int r = write_flags(n, false, sync);
    __atomic_store_n(&bs->disk, QCOW2_BM_DISK_CLEAN, __ATOMIC_RELEASE);
    return r;
}

/* With `sync`, the whole store, clear included.  Without, the data only
   (not flushed): the caller flushes the file and then clears. */
static int store_incremental(struct vdk_node *n, bool sync)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *bs = s->bitmaps;
    pthread_rwlock_wrlock(&bs->mark_lock);
    if (__atomic_load_n(&bs->disk, __ATOMIC_ACQUIRE) == QCOW2_BM_DISK_CLEAN) {
        pthread_rwlock_unlock(&bs->mark_lock);
        return 0;
    }
    __atomic_store_n(&bs->disk, QCOW2_BM_DISK_PENDING, __ATOMIC_RELEASE);
    move_notes(bs, NOTE_START);
    pthread_rwlock_unlock(&bs->mark_lock);

    /* Bits set from here on by writers that saw PENDING (and cancelled
       the clear) may reach the disk too: a superset does no harm. */
    int r = write_noted(n, sync);

    pthread_rwlock_wrlock(&bs->mark_lock);
    move_notes(bs, r < 0 ? NOTE_FAILED : NOTE_DONE);
    int st = QCOW2_BM_DISK_PENDING;
    if (r < 0)
        __atomic_compare_exchange_n(&bs->disk, &st, QCOW2_BM_DISK_DIRTY, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    else if (sync)
        r = clear_if_pending(n, true);
    pthread_rwlock_unlock(&bs->mark_lock);
    return r;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A store, whole or incremental, with sync_lock held; *gen (if not NULL)
   as for qcow2_bitmaps_flush_begin. */
static int store_locked(struct vdk_node *n, bool sync, uint64_t *gen)
{
    struct qcow2_bitmaps *b = ((struct qcow2_state *)n->opaque)->bitmaps;
    uint64_t g = ++b->store_gen;
    b->last_store = now_ns();
    b->store_due = false; /* this store covers a postponed one */
    int r;
    if (b->structural || b->ndead) {
        /* New bits wait for the whole store (it reads the words plainly). */
        pthread_rwlock_wrlock(&b->mark_lock);
        r = qcow2_bitmaps_store_full(n);
        pthread_rwlock_unlock(&b->mark_lock);
    } else {
        r = store_incremental(n, sync);
        if (r == 0 && !sync && gen &&
            __atomic_load_n(&b->disk, __ATOMIC_ACQUIRE) == QCOW2_BM_DISK_PENDING)
            *gen = g;
    }
    return r;
}

/* The thread that does postponed stores, each once bitmap-store-ms has
   passed since the previous store. */
static void *storer(void *arg)
{
    struct vdk_node *n = arg;
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    pthread_mutex_lock(&b->sync_lock);
    while (!b->storer_stop) {
        if (!b->store_due) {
            pthread_cond_wait(&b->storer_cond, &b->sync_lock);
            continue;
        }
        uint64_t due = b->last_store + s->bm_store_ns;
        if (now_ns() < due) {
            struct timespec t = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
            pthread_cond_timedwait(&b->storer_cond, &b->sync_lock, &t);
            continue;
        }
        /* With its own flushes: no flush of the node may follow. */
        if (store_locked(n, true, NULL) < 0)
            vdk_warn("qcow2 '%s': could not store the dirty bitmaps", n->filename);
    }
    pthread_mutex_unlock(&b->sync_lock);
    return NULL;
}

/* Leave this flush's store to the thread; false if there is none (then
   the caller stores now).  sync_lock held. */
static bool postpone(struct vdk_node *n)
{
    struct qcow2_bitmaps *b = ((struct qcow2_state *)n->opaque)->bitmaps;
    if (!b->storer_started && !b->storer_stop) {
        pthread_condattr_t a;
        pthread_condattr_init(&a);
        pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
        pthread_cond_init(&b->storer_cond, &a);
        pthread_condattr_destroy(&a);
        b->storer_started = pthread_create(&b->storer, NULL, storer, n) == 0;
        if (!b->storer_started)
            pthread_cond_destroy(&b->storer_cond);
    }
    if (!b->storer_started)
        return false;
    b->store_due = true;
    pthread_cond_signal(&b->storer_cond);
    return true;
}

/* *gen: this store's number if its clear is still due (0: none). */
static int store(struct vdk_node *n, bool sync, uint64_t *gen)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    /* A downgrade to compat=0.10 dropped the extension: the clusters it
       named leak, as with QEMU. */
    if (!b || !s->writable || s->version < 3)
        return 0;
    /* Unlocked peek: control operations never run beside I/O, and a
       writer leaves CLEAN only to set "in use", which a store then sees. */
    bool full = b->structural || b->ndead;
    if (!full && (!b->has_ext ||
                  __atomic_load_n(&b->disk, __ATOMIC_ACQUIRE) == QCOW2_BM_DISK_CLEAN))
        return 0;
    pthread_mutex_lock(&b->sync_lock);
    int r = 0;
    /* A flush soon after the last store leaves this one to the thread. */
    if (sync || full || !s->bm_store_ns || now_ns() - b->last_store >= s->bm_store_ns ||
        !postpone(n))
        r = store_locked(n, sync, gen);
    pthread_mutex_unlock(&b->sync_lock);
    return r;
}

int qcow2_bitmaps_store(struct vdk_node *n)
{
    return store(n, true, NULL);
}

int qcow2_bitmaps_flush_begin(struct vdk_node *n, uint64_t *gen)
{
    struct qcow2_state *s = n->opaque;
    *gen = 0;
    if (s->bm_store_close)
        return 0;
    return store(n, false, gen);
}

int qcow2_bitmaps_flush_end(struct vdk_node *n, uint64_t gen)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    pthread_mutex_lock(&b->sync_lock);
    int r = 0;
    /* A store begun since ours wrote data that our flush may have missed:
       its own end clears, after its own flush. */
    if (gen == b->store_gen) {
        pthread_rwlock_wrlock(&b->mark_lock);
        r = clear_if_pending(n, false);
        pthread_rwlock_unlock(&b->mark_lock);
    }
    pthread_mutex_unlock(&b->sync_lock);
    return r;
}

int qcow2_bitmaps_settle(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b)
        return 0;
    pthread_mutex_lock(&b->sync_lock);
    int r = b->store_due ? store_locked(n, true, NULL) : 0;
    pthread_mutex_unlock(&b->sync_lock);
    return r;
}

void qcow2_bitmaps_stop_storer(struct qcow2_state *s)
{
    struct qcow2_bitmaps *b = s->bitmaps;
    if (!b)
        return;
    pthread_mutex_lock(&b->sync_lock);
    b->storer_stop = true;
    bool started = b->storer_started;
    if (started)
        pthread_cond_signal(&b->storer_cond);
    pthread_mutex_unlock(&b->sync_lock);
    if (started) {
        pthread_join(b->storer, NULL);
        pthread_cond_destroy(&b->storer_cond);
        b->storer_started = false;
    }
}
