/* SPDX-License-Identifier: MIT */
/*
 * qcow2 persistent dirty bitmaps (the 0x23852875 header extension).
 *
 * On disk (qcow2.txt, "Bitmaps extension"): the extension names a
 * directory of entries {table offset, table size, flags, type,
 * granularity bits, name size, extra data size, extra data, name}, each
 * padded to 8 bytes.  A bitmap table has one 8-byte entry per cluster of
 * bitmap data: 0 (all zeros), 1 (all ones, no cluster) or the offset of a
 * data cluster.  Bit j of data byte i covers the guest range
 * [(8i + j) << granularity_bits, ...).  The autoclear bit 0 says the
 * extension is valid: a program that writes without keeping bitmaps clears
 * it, and the next bitmap-aware read-write open drops the extension.
 *
 * qcow2-bitmap.c owns that format and its bounds (QEMU's limits: 65535
 * bitmaps, a 64 MiB directory, names up to 1023 bytes, granularity 2^9 to
 * 2^31, tables up to 2^27 entries and 512 MiB of data per bitmap); every
 * other file (info, check, measure, the write path) goes through it.
 *
 * In memory a bitmap is a flat array of 64-bit words, one bit per
 * granularity chunk, loaded when the image is opened read-write (lazily on
 * first use otherwise), so marking a write costs a few word operations
 * whatever the image size.  Rules (QEMU's, plus the store on flush):
 *   - a read-write open marks every bitmap "in use" on disk (directory
 *     rewritten in place with the autoclear bit dropped around it);
 *   - every write, write-zeroes and discard marks the enabled ("auto")
 *     bitmaps dirty; disabled ones never change;
 *   - a flush (unless the node was opened with bitmap-store=close) stores
 *     the bitmaps and clears "in use" (qcow2-bitmap-sync.c): the data
 *     clusters changed since the last store are written in place (the
 *     directory says "in use", so nobody trusts them meanwhile), then the
 *     tables, then the node's flush of its file, and after it the
 *     directory rewritten in place with the flag cleared (durable at the
 *     next flush; a power loss before leaves it "in use").  Stores on
 *     flush are rate-limited (bitmap-store-ms): one due sooner is done
 *     later by a thread.  The first write after a store that sets a bit
 *     not already set rewrites the directory "in use" and flushes before
 *     it goes on;
 *     a write whose chunks are all set already is covered by the stored
 *     bitmap and goes straight through;
 *   - a clean close stores the same way; after add, remove, clear, merge,
 *     enable, disable or resize the store writes changed bitmaps to fresh
 *     clusters, then a fresh directory, then the header, then frees the
 *     old clusters;
 *   - a bitmap found "in use" at open (a crash) is inconsistent: its data
 *     is never read, it is kept as it is, listed with the in-use flag, and
 *     can only be removed.
 * Control operations (add, remove, clear, enable, disable, merge, resize)
 * run on the control thread, never beside I/O to the same node; marking
 * (the I/O path) uses atomic word operations.
 *
 * Concurrency of marking and storing (qcow2_bitmaps.disk, mark_lock):
 *   - a writer that sets new bits holds mark_lock for reading while it
 *     makes sure the disk says "in use" (state DIRTY; PENDING is turned
 *     back into DIRTY, which cancels the clear of a store in progress;
 *     CLEAN means one writer rewrites the directory under flag_lock), then
 *     notes the data clusters it changes and sets the bits;
 *   - a store swaps the noted clusters out and sets PENDING under
 *     mark_lock for writing, writes them without the lock, and clears the
 *     flag on disk under mark_lock for writing only if the state is still
 *     PENDING (no new bit since), moving to CLEAN.
 * So the flag is clear on disk only while every bit set in memory is in
 * the data on disk.
 */
#ifndef VDK_QCOW2_BITMAP_H
#define VDK_QCOW2_BITMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/qcow2/qcow2.h"

#define QCOW2_BME_FLAG_IN_USE      1u
#define QCOW2_BME_FLAG_AUTO        2u
#define QCOW2_BME_FLAG_EXTRA_COMPAT 4u
#define QCOW2_BME_RESERVED_FLAGS   0xfffffff8u
#define QCOW2_BME_TYPE_DIRTY       1
#define QCOW2_BME_MAX_BITMAPS      65535u
#define QCOW2_BME_MAX_NAME         1023u
#define QCOW2_BME_MIN_GRAN_BITS    9
#define QCOW2_BME_MAX_GRAN_BITS    31
#define QCOW2_BME_MAX_TABLE        0x8000000u         /* entries */
#define QCOW2_BME_MAX_PHYS         (512ull << 20)      /* data bytes per bitmap */
/* Memory all the loaded bitmaps of one image may take (ours: QEMU's
   per-bitmap bound times 65535 bitmaps would let an image exhaust memory). */
#define QCOW2_BME_MAX_MEM          (1ull << 30)
#define QCOW2_BME_ENTRY_HDR        24
/* Bitmap table entry: data cluster offset (bits 9-55), bit 0 "all ones". */
#define QCOW2_BME_TE_OFFSET        0x00fffffffffffe00ull
#define QCOW2_BME_TE_RESERVED      0xff000000000001feull
#define QCOW2_BME_TE_ALL_ONES      1ull

struct qcow2_bitmap {
    char *name;             /* NUL terminated; name_len bytes on disk */
    uint16_t name_len;
    uint8_t gran_bits;
    bool enabled;           /* the "auto" flag */
    bool inconsistent;      /* in use when found: data never read or changed */
    bool loaded;            /* words hold the data */
    bool changed;           /* rewrite whole at the next store (clear,
                               merge, resize, new) */
    uint64_t table_offset;  /* on disk, 0: none yet */
    uint32_t table_size;
    uint64_t nbits;         /* chunks covering the virtual size */
    uint64_t *words;        /* (nbits + 63) / 64 words, bit i = chunk i */
    /* Units of bitmap data (4 KiB, or a cluster if smaller) with bits set
       since the last store: one bit per unit; `writing` holds those a
       store is writing.  A store rewrites in place only the units that
       changed, so that a flush after a 4 KiB write writes 4 KiB, not a
       whole cluster of bitmap. */
    uint64_t nunits;
    unsigned unit_bits;
    uint64_t *dirty, *writing;
};

/* What the directory on disk says about the consistent bitmaps. */
enum {
    QCOW2_BM_DISK_DIRTY = 0,  /* "in use" (or no directory yet) */
    QCOW2_BM_DISK_PENDING,    /* "in use"; a store will clear it */
    QCOW2_BM_DISK_CLEAN,      /* flag clear, data on disk complete */
};

struct qcow2_bitmaps {
    /* The extension as the header states it. */
    bool has_ext;
    uint32_t ext_nb;
    uint64_t dir_size, dir_offset;
    bool stale_ext;         /* present but the autoclear bit is clear */

    struct qcow2_bitmap *bm;
    uint32_t nb;
    int disk;               /* QCOW2_BM_DISK_*, atomic */
    bool structural;        /* the next store rewrites (see the rules) */
    pthread_rwlock_t mark_lock;
    pthread_mutex_t flag_lock;   /* writers setting "in use" again */
    pthread_mutex_t sync_lock;   /* one store at a time */
    uint64_t store_gen;          /* stores begun, under sync_lock */
    /* The rate limit of stores on flush (bitmap-store-ms), under
       sync_lock: the time of the last store, and whether one waits. */
    uint64_t last_store;
    bool store_due;
    pthread_t storer;            /* does postponed stores, started lazily */
    pthread_cond_t storer_cond;  /* with sync_lock */
    bool storer_started, storer_stop;
    /* Tables (with their data) to free once the next directory is written. */
    struct qcow2_bm_table { uint64_t off; uint32_t size; } *dead;
    uint32_t ndead;
    uint64_t mem;           /* bytes of words allocated, <= QCOW2_BME_MAX_MEM */
};

/* ---- the extension ---- */
/* Parse the 24-byte extension body (its length is checked; the fields once
   the autoclear bit is known, at qcow2_bitmaps_open). */
int qcow2_bitmap_parse_ext(struct vdk_node *n, const uint8_t *d, uint32_t len,
                           struct vdk_error **errp);
/* The extension body to write into the header; false: none. */
bool qcow2_bitmap_ext(const struct qcow2_state *s, uint8_t out[24]);

/* ---- life cycle (qcow2-bitmap.c) ---- */
/* The state for the extension or a first bitmap (allocated once). */
int qcow2_bitmaps_alloc(struct qcow2_state *s);
/* After the tables are known: read and validate the directory (an
   unusable one fails the open as in QEMU), load the data of a writable
   image and mark every bitmap in use; drop a stale extension. */
int qcow2_bitmaps_open(struct vdk_node *n, struct vdk_error **errp);
/* Reopen read-write: load and mark in use, as at open. */
int qcow2_bitmaps_reopen_rw(struct vdk_node *n, struct vdk_error **errp);
void qcow2_bitmaps_free(struct qcow2_state *s);
/* Load one bitmap's data (read-only opens load on first use). */
int qcow2_bitmap_load(struct vdk_node *n, struct qcow2_bitmap *b);
/* Every cluster the bitmaps hold on disk (directory, tables, data), for
   check's reference count: add(ctx, offset, length) per range.  Returns
   the number of bitmap tables that are invalid (each named on stderr;
   check counts them as corruptions, as QEMU does), or -errno. */
int qcow2_bitmaps_refs(struct vdk_node *n, void (*add)(void *ctx, uint64_t off,
                       uint64_t len), void *ctx);
/* Bytes the bitmaps would take fully allocated in an image of cluster
   size cs (qemu-img measure's "bitmaps size"). */
uint64_t qcow2_bitmaps_measure(struct vdk_node *n, uint64_t cs);
/* Resize every loaded bitmap with the image (new chunks clean). */
int qcow2_bitmaps_resize(struct vdk_node *n, uint64_t size);
/* The store after a structural change: changed bitmaps to fresh clusters,
   a fresh directory and header, old clusters freed.  Holds s->lock; the
   caller holds mark_lock for writing (or runs alone). */
int qcow2_bitmaps_store_full(struct vdk_node *n);
/* The directory of the current list, flags as in memory with "in use" on
   every bitmap when in_use (always on inconsistent ones); NULL: ENOMEM. */
uint8_t *qcow2_bitmaps_build_directory(struct qcow2_state *s, bool in_use, uint64_t *size);
/* A bitmap table, host endian, every entry checked (-EINVAL if not). */
int qcow2_bitmap_read_table(struct vdk_node *n, uint64_t off, uint32_t size, uint64_t **out);
/* Bitmap data bytes [at, at+len) from the words (read atomically). */
void qcow2_bitmap_data(const struct qcow2_bitmap *b, uint8_t *p, uint64_t at, uint64_t len);
/* Allocate (zeroed) the cluster bit arrays of b for its nbits; -ENOMEM. */
int qcow2_bitmap_alloc_dirty(const struct qcow2_state *s, struct qcow2_bitmap *b);

/* ---- storing and marking (qcow2-bitmap-sync.c) ---- */
/* Clean close, or a reopen read-only: store, clear in-use. */
int qcow2_bitmaps_store(struct vdk_node *n);
/*
 * A flush of the node, in two steps around the node's flush of its file
 * (both do nothing if opened with bitmap-store=close): _begin writes
 * the bitmap data changed since the last store, unflushed, and sets *gen
 * nonzero when the flag may be cleared after; _end(gen), called only
 * after a flush of the file that began after _begin returned, writes the
 * directory with the flag cleared (unflushed: durable at the next flush)
 * unless a new bit or another store came in between.  Less than
 * bitmap-store-ms after the previous store, _begin leaves the store to a
 * thread that does it, clear included, when that time has passed.
 */
int qcow2_bitmaps_flush_begin(struct vdk_node *n, uint64_t *gen);
int qcow2_bitmaps_flush_end(struct vdk_node *n, uint64_t gen);
/* A postponed store, now (before control operations and resize). */
int qcow2_bitmaps_settle(struct vdk_node *n);
/* Ends that thread (before a close stores the bitmaps; idempotent). */
void qcow2_bitmaps_stop_storer(struct qcow2_state *s);
/* Before a control operation changes bitmaps: "in use" on disk. */
int qcow2_bitmaps_ensure_in_use(struct vdk_node *n);
/* Hot path: mark guest [off, off+bytes) in every enabled bitmap, after
   setting "in use" on disk again when a store cleared it; -errno if that
   failed (the write must not go on). */
int qcow2_bitmaps_mark_slow(struct vdk_node *n, uint64_t off, uint64_t bytes);
static inline int qcow2_bitmaps_mark(struct vdk_node *n, uint64_t off, uint64_t bytes)
{
    struct qcow2_state *s = n->opaque;
    if (s->bm_track && bytes)
        return qcow2_bitmaps_mark_slow(n, off, bytes);
    return 0;
}

/* ---- in memory (qcow2-bitmap-ops.c) ---- */
/* Recompute s->bm_track after a change of the list or of a flag. */
void qcow2_bitmaps_update_track(struct qcow2_state *s);
/* Bits [first, last] of the array w, read and set atomically: whether all
   are set (acquire); set them, true when one was clear (release); whether
   any of the first nbits is set. */
bool qcow2_bits_all_set(const uint64_t *w, uint64_t first, uint64_t last);
bool qcow2_bits_set(uint64_t *w, uint64_t first, uint64_t last);
bool qcow2_bits_any(const uint64_t *w, uint64_t nbits);
/* Guest [off, off+bytes) as chunks of b, clipped to its size; false: none. */
bool qcow2_bitmap_chunks(const struct qcow2_bitmap *b, uint64_t off, uint64_t bytes,
                         uint64_t *first, uint64_t *last);
struct qcow2_bitmap *qcow2_bitmap_find(struct qcow2_state *s, const char *name);
/* qemu's "bitmaps" list for info; NULL when there are none. */
struct json_object *qcow2_bitmaps_json(struct vdk_node *n);
/* Driver callbacks. */
int qcow2_bitmap_list(struct vdk_node *n, struct vdk_bitmap_info **list, int *count,
                      struct vdk_error **errp);
int qcow2_bitmap_op(struct vdk_node *n, enum vdk_bitmap_op op, const char *name,
                    uint64_t granularity, struct vdk_error **errp);
int qcow2_bitmap_status(struct vdk_node *n, const char *name, uint64_t offset,
                        uint64_t bytes, uint64_t *pnum);
int qcow2_bitmap_mark_named(struct vdk_node *n, const char *name, uint64_t offset,
                            uint64_t bytes);

#endif /* VDK_QCOW2_BITMAP_H */
