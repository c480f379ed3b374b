/* SPDX-License-Identifier: MIT */
/*
 * qcow2 persistent dirty bitmaps in memory: marking writes, dirty runs,
 * the add/remove/clear/enable/disable operations with qemu-img's rules
 * and words, and the "bitmaps" list of info.  Storing is qcow2-bitmap.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

/* Inconsistent bitmaps are refused by every operation but remove (QEMU's
   BDRV_BITMAP_INCONSISTENT check). */
#define INCONSISTENT_FMT "Bitmap '%s' is inconsistent and cannot be used"

struct qcow2_bitmap *qcow2_bitmap_find(struct qcow2_state *s, const char *name)
{
    for (uint32_t i = 0; s->bitmaps && i < s->bitmaps->nb; i++)
        if (strcmp(s->bitmaps->bm[i].name, name) == 0)
            return &s->bitmaps->bm[i];
    return NULL;
}

void qcow2_bitmaps_update_track(struct qcow2_state *s)
{
    bool track = false;
    for (uint32_t i = 0; s->writable && s->bitmaps && i < s->bitmaps->nb; i++) {
        const struct qcow2_bitmap *b = &s->bitmaps->bm[i];
        track |= b->enabled && b->loaded && !b->inconsistent;
    }
    s->bm_track = track;
}

bool qcow2_bitmap_chunks(const struct qcow2_bitmap *b, uint64_t off, uint64_t bytes,
                         uint64_t *first, uint64_t *last)
{
    *first = off >> b->gran_bits;
    *last = (off + bytes - 1) >> b->gran_bits;
    if (!bytes || *first >= b->nbits)
        return false;
    if (*last >= b->nbits)
        *last = b->nbits - 1;
    return true;
}

static uint64_t word_mask(uint64_t w, uint64_t first, uint64_t last)
{
    unsigned lo = w == first / 64 ? first % 64 : 0;
    unsigned hi = w == last / 64 ? last % 64 : 63;
    return (hi == 63 ? ~0ull : (1ull << (hi + 1)) - 1) & ~((1ull << lo) - 1);
}

bool qcow2_bits_all_set(const uint64_t *w, uint64_t first, uint64_t last)
{
    for (uint64_t i = first / 64; i <= last / 64; i++) {
        uint64_t m = word_mask(i, first, last);
        if ((__atomic_load_n(&w[i], __ATOMIC_ACQUIRE) & m) != m)
            return false;
    }
    return true;
}

bool qcow2_bits_set(uint64_t *w, uint64_t first, uint64_t last)
{
    bool changed = false;
    for (uint64_t i = first / 64; i <= last / 64; i++) {
        uint64_t m = word_mask(i, first, last);
        /* Most writes land in chunks already dirty: read before the atomic. */
        if ((__atomic_load_n(&w[i], __ATOMIC_RELAXED) & m) != m) {
            __atomic_fetch_or(&w[i], m, __ATOMIC_RELEASE);
            changed = true;
        }
    }
    return changed;
}

bool qcow2_bits_any(const uint64_t *w, uint64_t nbits)
{
    for (uint64_t i = 0; w && i < (nbits + 63) / 64; i++)
        if (__atomic_load_n(&w[i], __ATOMIC_RELAXED))
            return true;
    return false;
}

static bool test_bit(const struct qcow2_bitmap *b, uint64_t i)
{
    return (__atomic_load_n(&b->words[i / 64], __ATOMIC_RELAXED) >> (i % 64)) & 1;
}

/* First chunk at or after i (below end) whose bit differs from `val`. */
static uint64_t next_change(const struct qcow2_bitmap *b, uint64_t i, uint64_t end,
                            bool val)
{
    while (i < end) {
        uint64_t w = __atomic_load_n(&b->words[i / 64], __ATOMIC_RELAXED);
        if (val)
            w = ~w;
        w &= ~0ull << (i % 64);
        if (w)
            return vdk_min_u64(end, (i & ~63ull) + (uint64_t)__builtin_ctzll(w));
        i = (i & ~63ull) + 64;
    }
    return end;
}

static int get_loaded(struct vdk_node *n, const char *name, struct qcow2_bitmap **out)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmap *b = qcow2_bitmap_find(s, name);
    if (!b)
        return -ENOENT;
    if (b->inconsistent)
        return -EINVAL;
    if (!b->loaded) {
        pthread_mutex_lock(&s->lock);
        int r = qcow2_bitmap_load(n, b);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            return r == -EINVAL ? -EIO : r;
    }
    *out = b;
    return 0;
}

int qcow2_bitmap_status(struct vdk_node *n, const char *name, uint64_t offset,
                        uint64_t bytes, uint64_t *pnum)
{
    struct qcow2_bitmap *b;
    int r = get_loaded(n, name, &b);
    *pnum = 0;
    if (r < 0)
        return r;
    uint64_t first = offset >> b->gran_bits;
    if (!bytes || first >= b->nbits) {
        *pnum = bytes;
        return 0;
    }
    bool val = test_bit(b, first);
    uint64_t stop = next_change(b, first + 1, b->nbits, val);
    uint64_t end = stop >= b->nbits ? UINT64_MAX : stop << b->gran_bits;
    *pnum = vdk_min_u64(end - offset, bytes);
    return val;
}

int qcow2_bitmap_mark_named(struct vdk_node *n, const char *name, uint64_t offset,
                            uint64_t bytes)
{
    struct qcow2_bitmap *b;
    int r = get_loaded(n, name, &b);
    if (r < 0)
        return r;
    uint64_t f, l;
    if (!qcow2_bitmap_chunks(b, offset, bytes, &f, &l))
        return 0;
    /* A control operation (merge, convert --bitmaps): stored whole. */
    if ((r = qcow2_bitmaps_ensure_in_use(n)) < 0)
        return r;
    if (qcow2_bits_set(b->words, f, l)) {
        b->changed = true;
        ((struct qcow2_state *)n->opaque)->bitmaps->structural = true;
    }
    return 0;
}

static uint64_t default_granularity(const struct qcow2_state *s)
{
    uint64_t g = s->cluster_size < 4096 ? 4096 : s->cluster_size;
    return g > 65536 ? 65536 : g;
}

/* Bytes of bitmap data for `size` guest bytes at 2^gb per bit. */
static uint64_t bitmap_bytes(uint64_t size, unsigned gb)
{
    return (((size + (1ull << gb) - 1) >> gb) + 7) / 8;
}

static int add_bitmap(struct vdk_node *n, const char *name, uint64_t gran, bool enabled,
                      struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    size_t nlen = strlen(name);
    if (!nlen)
        return vdk_error_setf(errp, EINVAL, "Bitmap name cannot be empty");
    if (gran && (gran < 512 || (gran & (gran - 1)) || gran > (1ull << 31)))
        return vdk_error_setf(errp, EINVAL, "Granularity must be power of 2 and at "
                              "least 512");
    if (!gran)
        gran = default_granularity(s);
    unsigned gb = (unsigned)__builtin_ctzll(gran);
    const char *why = NULL;
    uint64_t dir_size = 0;
    for (uint32_t i = 0; s->bitmaps && i < s->bitmaps->nb; i++)
        dir_size += (24 + (uint64_t)s->bitmaps->bm[i].name_len + 7) & ~7ull;
    if (s->version < 3)
        why = "Cannot store dirty bitmaps in qcow2 v2 files";
    else if (nlen > QCOW2_BME_MAX_NAME)
        why = "Name length exceeds maximum (1023 characters)";
    else if (bitmap_bytes(s->size, gb) > QCOW2_BME_MAX_PHYS ||
             bitmap_bytes(s->size, gb) > ((uint64_t)QCOW2_BME_MAX_TABLE << s->cluster_bits))
        why = "Too much space will be occupied by the bitmap. Use larger granularity";
    else if (s->bitmaps && s->bitmaps->nb >= QCOW2_BME_MAX_BITMAPS)
        why = "Maximum number of persistent bitmaps is already reached";
    else if (dir_size + ((24 + nlen + 7) & ~7ull) > QCOW2_MAX_BITMAP_DIR)
        why = "Not enough space in the bitmap directory";
    if (why)
        return vdk_error_setf(errp, EINVAL, "Can't make bitmap '%s' persistent in '%s': %s",
                              name, n->filename, why);
    if (qcow2_bitmap_find(s, name))
        return vdk_error_setf(errp, EEXIST, "Bitmap already exists: %s", name);
    if (qcow2_bitmaps_alloc(s) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = qcow2_bitmaps_ensure_in_use(n);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not mark the bitmaps in use");
    struct qcow2_bitmaps *bs = s->bitmaps;
    struct qcow2_bitmap *arr = realloc(bs->bm, (bs->nb + 1) * sizeof(*arr));
    if (!arr)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    bs->bm = arr;
    struct qcow2_bitmap *b = &arr[bs->nb];
    memset(b, 0, sizeof(*b));
    b->nbits = (s->size + gran - 1) >> gb;
    uint64_t bytes = (b->nbits + 63) / 64 * 8;
    if (bytes > QCOW2_BME_MAX_MEM - bs->mem)
        return vdk_error_setf(errp, EFBIG, "the bitmaps of '%s' would take more than %llu "
                              "MiB of memory", n->filename, QCOW2_BME_MAX_MEM >> 20);
    b->words = calloc(1, bytes ? bytes : 8);
    b->name = strdup(name);
    if (!b->words || !b->name || qcow2_bitmap_alloc_dirty(s, b) < 0) {
        free(b->words);
        free(b->name);
        free(b->dirty);
        free(b->writing);
        memset(b, 0, sizeof(*b));
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    bs->mem += bytes;
    b->name_len = (uint16_t)nlen;
    b->gran_bits = (uint8_t)gb;
    b->enabled = enabled;
    b->loaded = true;
    b->changed = true;
    bs->nb++;
    bs->structural = true;
    qcow2_bitmaps_update_track(s);
    return 0;
}

static int remove_bitmap(struct vdk_node *n, struct qcow2_bitmap *b,
                         struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    struct qcow2_bitmaps *bs = s->bitmaps;
    int r = qcow2_bitmaps_ensure_in_use(n);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not mark the bitmaps in use");
    if (b->table_offset) {
        struct qcow2_bm_table *d = realloc(bs->dead, (bs->ndead + 1) * sizeof(*d));
        if (!d)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        bs->dead = d;
        d[bs->ndead++] = (struct qcow2_bm_table){ b->table_offset, b->table_size };
    }
    if (b->loaded)
        bs->mem -= (b->nbits + 63) / 64 * 8;
    free(b->name);
    free(b->words);
    free(b->dirty);
    free(b->writing);
    uint32_t i = (uint32_t)(b - bs->bm);
    memmove(b, b + 1, (bs->nb - i - 1) * sizeof(*b));
    bs->nb--;
    bs->structural = true;
    qcow2_bitmaps_update_track(s);
    return 0;
}

int qcow2_bitmap_op(struct vdk_node *n, enum vdk_bitmap_op op, const char *name,
                    uint64_t granularity, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (op == VDK_BITMAP_ADD || op == VDK_BITMAP_ADD_DISABLED)
        return add_bitmap(n, name, granularity, op == VDK_BITMAP_ADD, errp);
    struct qcow2_bitmap *b = qcow2_bitmap_find(s, name);
    if (!b)
        return vdk_error_setf(errp, ENOENT, "Dirty bitmap '%s' not found", name);
    if (op == VDK_BITMAP_REMOVE)
        return remove_bitmap(n, b, errp);
    if (b->inconsistent)
        return vdk_error_setf(errp, EBUSY, INCONSISTENT_FMT, name);
    int r = qcow2_bitmaps_ensure_in_use(n);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not mark the bitmaps in use");
    switch (op) {
    case VDK_BITMAP_CLEAR:
        if ((r = get_loaded(n, name, &b)) < 0)
            return vdk_error_setf_errno(errp, r, "Could not read bitmap '%s' from image",
                                        name);
        memset(b->words, 0, (b->nbits + 63) / 64 * 8);
        b->changed = true;
        break;
    case VDK_BITMAP_ENABLE:
    case VDK_BITMAP_DISABLE:
        b->enabled = op == VDK_BITMAP_ENABLE;
        break;
    default:
        return vdk_error_setf(errp, EINVAL, "unknown bitmap operation");
    }
    s->bitmaps->structural = true;
    qcow2_bitmaps_update_track(s);
    return 0;
}

int qcow2_bitmap_list(struct vdk_node *n, struct vdk_bitmap_info **list, int *count,
                      struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint32_t nb = s->bitmaps ? s->bitmaps->nb : 0;
    *list = NULL;
    *count = 0;
    if (s->version < 3)
        return vdk_error_setf(errp, ENOTSUP, "Format driver 'qcow2' does not support "
                              "bitmaps");
    if (!nb)
        return 0;
    struct vdk_bitmap_info *l = calloc(nb, sizeof(*l));
    if (!l)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < nb; i++) {
        const struct qcow2_bitmap *b = &s->bitmaps->bm[i];
        l[i].name = strdup(b->name);
        l[i].granularity = 1ull << b->gran_bits;
        l[i].enabled = b->enabled;
        l[i].in_use = b->inconsistent;
        if (!l[i].name) {
            vdk_bitmap_list_free(l, (int)i);
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
    }
    *list = l;
    *count = (int)nb;
    return 0;
}

struct json_object *qcow2_bitmaps_json(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    if (!s->bitmaps || !s->bitmaps->nb)
        return NULL;
    struct json_object *arr = json_object_new_array();
    for (uint32_t i = 0; arr && i < s->bitmaps->nb; i++) {
        const struct qcow2_bitmap *b = &s->bitmaps->bm[i];
        struct json_object *o = json_object_new_object(), *fl = json_object_new_array();
        /* What the image says: a bitmap we hold open read-write is in use on
           disk, but qemu reports its own open bitmaps without the flag. */
        if (b->inconsistent)
            json_object_array_add(fl, json_object_new_string("in-use"));
        if (b->enabled)
            json_object_array_add(fl, json_object_new_string("auto"));
        json_object_object_add(o, "flags", fl);
        json_object_object_add(o, "name", json_object_new_string(b->name));
        json_object_object_add(o, "granularity",
                               json_object_new_int64((int64_t)1 << b->gran_bits));
        json_object_array_add(arr, o);
    }
    return arr;
}
