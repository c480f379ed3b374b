/* SPDX-License-Identifier: MIT */
/*
 * qcow2: probe, header and header extensions, feature bits, open/close,
 * flush, info and the driver table.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/luks/luks.h"
#include "formats/qcow2/qcow2-snapshot.h"
#include "formats/qcow2/qcow2-bitmap.h"

/* Default cache budgets (bytes), as qemu: the L2 cache covers the whole
   disk up to 32 MiB of tables. */
#define QCOW2_L2_CACHE_MAX   (32u << 20)
#define QCOW2_CACHE_MAX_ENTRIES 4096u

static const char *const bitmap_store_values[] = { "flush", "close", NULL };

static const struct vdk_opt_desc qcow2_open_opts[] = {
    { "l2-cache-size", VDK_OPT_SIZE, "Maximum L2 table cache size",
      "enough for the whole disk, at most 32M", NULL },
    { "refcount-cache-size", VDK_OPT_SIZE, "Maximum refcount block cache size",
      "l2-cache-size / 4", NULL },
    { "data-file", VDK_OPT_STRING, "External data file to use instead of the "
      "one recorded in the image", NULL, NULL },
    { "snapshot.id", VDK_OPT_STRING, "ID of an internal snapshot to open read-only",
      NULL, NULL },
    { "snapshot.name", VDK_OPT_STRING, "Name of an internal snapshot to open read-only",
      NULL, NULL },
    { "encrypt.key-secret", VDK_OPT_STRING, "ID of the secret that provides the LUKS "
      "passphrase", NULL, NULL },
    { "encrypt.format", VDK_OPT_STRING, "Encryption format expected (luks)", NULL, NULL },
    { "bitmap-store", VDK_OPT_ENUM, "When persistent dirty bitmaps are stored and their "
      "in-use flag cleared: on every flush and at close, or at close only", "flush",
      bitmap_store_values },
    { "bitmap-store-ms", VDK_OPT_NUMBER, "With bitmap-store=flush, at most one store "
      "on flush per this many milliseconds; a flush sooner leaves its store to be "
      "done this long after the previous one (0: at every flush)", "50", NULL },
    VDK_LUKS_LIMIT_OPTS("encrypt."),
    { NULL, 0, NULL, NULL, NULL },
};

static int qcow2_probe(const uint8_t *buf, size_t len, const char *filename)
{
    /* Version 1 is qcow (block/probe.c).  Any other version, and a header
       too short to hold one, is a qcow2 that open refuses, never raw. */
    if (len >= 4 && q_be32(buf) == QCOW2_MAGIC)
        return len >= 8 && q_be32(buf + 4) == 1 ? 0 : 100;
    return 0;
}

int qcow2_signal_corruption(struct vdk_node *n, const char *fmt, ...)
{
    struct qcow2_state *s = n->opaque;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->writable && !s->corrupt && !s->repair_open) {
        s->corrupt = true;
        s->incompat |= QCOW2_INCOMPAT_CORRUPT;
        qcow2_write_incompat(n);
        vdk_flush(n->file);
        vdk_warn("qcow2 image '%s' is corrupt: %s; further access is refused "
                 "until it is repaired ('check -r all')", n->filename, msg);
    } else if (!s->corrupt) {
        s->corrupt = true;
        vdk_warn("qcow2 image '%s' is corrupt: %s", n->filename, msg);
    }
    return -EIO;
}

int qcow2_write_incompat(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    uint8_t b[8];
    if (s->version < 3)
        return 0;
    q_st64(b, s->incompat);
    return vdk_pwrite(n->file, b, 8, QH_INCOMPAT, 0);
}

int qcow2_mark_dirty(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    if (!s->lazy || s->dirty_set)
        return 0;
    s->incompat |= QCOW2_INCOMPAT_DIRTY;
    int r = qcow2_write_incompat(n);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0)
        s->dirty_set = true;
    return r;
}

/* Name a feature bit from the image's own table, if it has one. */
static const char *feature_name(const struct qcow2_state *s, uint8_t type, unsigned bit)
{
    for (uint32_t i = 0; i < s->nb_fnames; i++)
        if (s->fnames[i].type == type && s->fnames[i].bit == bit)
            return s->fnames[i].name;
    return NULL;
}

static int parse_extensions(struct vdk_node *n, const uint8_t *hdr, uint64_t start,
                            uint64_t end, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t off = start;
    while (off + 8 <= end) {
        uint32_t type = q_be32(hdr + off), len = q_be32(hdr + off + 4);
        off += 8;
        if (type == QCOW2_EXT_END)
            return 0;
        if (len > end - off)
            return vdk_error_setf(errp, EINVAL, "header extension 0x%08" PRIx32
                                  " (%" PRIu32 " bytes) reaches past the header area",
                                  type, len);
        const uint8_t *d = hdr + off;
        switch (type) {
        case QCOW2_EXT_BACKING_FMT:
            free(n->backing_fmt);
            n->backing_fmt = strndup((const char *)d, len);
            if (!n->backing_fmt)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        case QCOW2_EXT_FEATURES: {
            uint32_t cnt = len / 48;
            free(s->fnames);
            s->fnames = calloc(cnt ? cnt : 1, sizeof(*s->fnames));
            if (!s->fnames)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            s->nb_fnames = cnt;
            for (uint32_t i = 0; i < cnt; i++) {
                s->fnames[i].type = d[i * 48];
                s->fnames[i].bit = d[i * 48 + 1];
                memcpy(s->fnames[i].name, d + i * 48 + 2, 46);
                s->fnames[i].name[46] = 0;
            }
            break;
        }
        case QCOW2_EXT_DATA_FILE:
            free(s->data_file_name);
            s->data_file_name = strndup((const char *)d, len);
            if (!s->data_file_name)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        case QCOW2_EXT_BITMAPS: {
            int r = qcow2_bitmap_parse_ext(n, d, len, errp);
            if (r < 0)
                return r;
            break;
        }
        case QCOW2_EXT_CRYPTO: {
            int r = qcow2_crypto_parse_ext(n, d, len, errp);
            if (r < 0)
                return r;
            break;
        }
        default: {
            /* Unknown: keep to write back unchanged when the header is
               rewritten. */
            struct qcow2_ext *e = realloc(s->exts, (s->nb_exts + 1) * sizeof(*e));
            if (!e)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            s->exts = e;
            e[s->nb_exts].type = type;
            e[s->nb_exts].len = len;
            e[s->nb_exts].data = malloc(len ? len : 1);
            if (!e[s->nb_exts].data)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            memcpy(e[s->nb_exts].data, d, len);
            s->nb_exts++;
        }
        }
        off += vdk_align_up(len, 8);
    }
    return 0;
}

int qcow2_read_header(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint8_t h[QCOW2_V3_HEADER_LEN_CT];
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "could not get the file size");
    if (flen < QCOW2_V2_HEADER_LEN)
        return vdk_error_setf(errp, EINVAL, "file too short for a qcow2 header (%"
                              PRId64 " bytes)", flen);
    memset(h, 0, sizeof(h));
    int r = vdk_pread(n->file, h, sizeof(h), 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not read the qcow2 header");
    if (q_be32(h) != QCOW2_MAGIC)
        return vdk_error_setf(errp, EINVAL, "Image is not in qcow2 format");
    s->version = q_be32(h + QH_VERSION);
    if (s->version != 2 && s->version != 3)
        return vdk_error_setf(errp, ENOTSUP, "Unsupported qcow2 version %" PRIu32,
                              s->version);
    s->cluster_bits = q_be32(h + QH_CLUSTER_BITS);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS || s->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
        return vdk_error_setf(errp, EINVAL, "cluster_bits %" PRIu32 " out of range "
                              "(must be 9..21)", s->cluster_bits);
    s->cluster_size = 1u << s->cluster_bits;
    s->backing_offset = q_be64(h + QH_BACKING_OFFSET);
    s->backing_size = q_be32(h + QH_BACKING_SIZE);
    s->size = q_be64(h + QH_SIZE);
    uint32_t crypt = q_be32(h + QH_CRYPT_METHOD);
    s->l1_size = q_be32(h + QH_L1_SIZE);
    s->l1_offset = q_be64(h + QH_L1_OFFSET);
    s->rt_offset = q_be64(h + QH_RT_OFFSET);
    s->rt_clusters = q_be32(h + QH_RT_CLUSTERS);
    s->nb_snapshots = q_be32(h + QH_NB_SNAPSHOTS);
    s->snapshots_offset = q_be64(h + QH_SNAPSHOTS_OFFSET);
    if (s->version == 2) {
        s->refcount_order = 4;
        s->header_length = QCOW2_V2_HEADER_LEN;
    } else {
        s->incompat = q_be64(h + QH_INCOMPAT);
        s->compat = q_be64(h + QH_COMPAT);
        s->autoclear = q_be64(h + QH_AUTOCLEAR);
        s->refcount_order = q_be32(h + QH_REFCOUNT_ORDER);
        s->header_length = q_be32(h + QH_HEADER_LENGTH);
        if (s->header_length < QCOW2_V3_HEADER_LEN || s->header_length > s->cluster_size)
            return vdk_error_setf(errp, EINVAL, "header_length %" PRIu32 " out of range",
                                  s->header_length);
        if (s->header_length > QH_COMPRESSION_TYPE)
            s->compression_type = h[QH_COMPRESSION_TYPE];
    }
    if (s->refcount_order > 6)
        return vdk_error_setf(errp, EINVAL, "refcount_order %" PRIu32 " out of range "
                              "(must be 0..6)", s->refcount_order);
    s->crypt_method = crypt; /* checked with the extension below */
    if (s->size > QCOW2_MAX_SIZE)
        return vdk_error_setf(errp, EFBIG, "virtual size %" PRIu64 " too large", s->size);

    /* Whole header cluster: extensions and the backing file name. */
    uint64_t hlen = vdk_min_u64(s->cluster_size, (uint64_t)flen);
    uint8_t *hdr = calloc(1, s->cluster_size);
    if (!hdr)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    r = vdk_pread(n->file, hdr, hlen, 0, 0);
    if (r < 0) {
        free(hdr);
        return vdk_error_setf_errno(errp, r, "could not read the qcow2 header");
    }
    uint64_t ext_end = s->cluster_size;
    if (s->backing_offset) {
        if (s->backing_size > QCOW2_MAX_BACKING_NAME || s->backing_size == 0 ||
            s->backing_offset > s->cluster_size - s->backing_size) {
            free(hdr);
            return vdk_error_setf(errp, EINVAL, "backing file name (offset %" PRIu64
                                  ", %" PRIu32 " bytes) out of range", s->backing_offset,
                                  s->backing_size);
        }
        ext_end = s->backing_offset;
        n->backing_file = strndup((const char *)hdr + s->backing_offset, s->backing_size);
        if (!n->backing_file) {
            free(hdr);
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
    }
    if (s->version >= 3 || s->header_length < ext_end)
        r = parse_extensions(n, hdr, s->header_length, ext_end, errp);
    free(hdr);
    if (r < 0)
        return r;

    uint64_t unknown = s->incompat & ~QCOW2_INCOMPAT_KNOWN;
    if (unknown) {
        char names[256] = "";
        size_t l = 0;
        for (unsigned b = 0; b < 64 && l < sizeof(names) - 1; b++) {
            if (!(unknown & (1ull << b)))
                continue;
            const char *nm = feature_name(s, 0, b);
            l += (size_t)snprintf(names + l, sizeof(names) - l, "%s%s", l ? ", " : "",
                                  nm ? nm : "");
            if (!nm && l < sizeof(names) - 1)
                l += (size_t)snprintf(names + l, sizeof(names) - l, "unknown bit %u", b);
        }
        return vdk_error_setf(errp, ENOTSUP, "unsupported qcow2 feature(s): %s", names);
    }
    if (s->compression_type > QCOW2_COMP_ZSTD)
        return vdk_error_setf(errp, ENOTSUP, "unknown compression type %u",
                              s->compression_type);
    if (s->compression_type != QCOW2_COMP_ZLIB &&
        !(s->incompat & QCOW2_INCOMPAT_COMPRESSION))
        return vdk_error_setf(errp, EINVAL, "compression_type %u set but the "
                              "compression type feature bit is not",
                              s->compression_type);
    s->extended_l2 = s->incompat & QCOW2_INCOMPAT_EXTL2;
    if (s->extended_l2 && s->cluster_bits < 14)
        return vdk_error_setf(errp, EINVAL, "extended L2 entries need clusters of at "
                              "least 16 KiB (cluster_bits is %" PRIu32 ")", s->cluster_bits);
    s->l2_entry_size = s->extended_l2 ? 16 : 8;
    s->l2_bits = s->cluster_bits - (s->extended_l2 ? 4 : 3);
    s->sc_bits = s->extended_l2 ? s->cluster_bits - 5 : s->cluster_bits;
    s->rb_bits = s->cluster_bits + 3 - s->refcount_order;
    s->refcount_max = s->refcount_order == 6 ? UINT64_MAX
                                             : (1ull << (1u << s->refcount_order)) - 1;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->coffset_mask = (1ull << s->csize_shift) - 1;
    if (!(s->incompat & QCOW2_INCOMPAT_DATA_FILE) && (s->autoclear & QCOW2_AUTOCLEAR_DATA_RAW))
        s->autoclear &= ~QCOW2_AUTOCLEAR_DATA_RAW; /* meaningless without a data file */
    s->data_raw = (s->incompat & QCOW2_INCOMPAT_DATA_FILE) &&
                  (s->autoclear & QCOW2_AUTOCLEAR_DATA_RAW);

    /* Tables: aligned, sized, inside the file. */
    uint64_t need_l1 = qcow2_l1_entries(s, s->size);
    if (need_l1 > QCOW2_MAX_L1_BYTES / 8)
        return vdk_error_setf(errp, EFBIG, "virtual size %" PRIu64 " needs an L1 table "
                              "larger than 32 MiB", s->size);
    if (s->l1_size < need_l1)
        return vdk_error_setf(errp, EINVAL, "l1_size %" PRIu32 " too small for virtual "
                              "size %" PRIu64 " (needs %" PRIu64 ")", s->l1_size, s->size,
                              need_l1);
    if (s->l1_size > QCOW2_MAX_L1_BYTES / 8)
        return vdk_error_setf(errp, EFBIG, "l1_size %" PRIu32 " too large", s->l1_size);
    if (s->l1_size && (q_offset_in_cluster(s, s->l1_offset) ||
                       s->l1_offset > (uint64_t)flen ||
                       (uint64_t)s->l1_size * 8 > (uint64_t)flen - s->l1_offset))
        return vdk_error_setf(errp, EINVAL, "L1 table at 0x%" PRIx64 " (%" PRIu32
                              " entries) unaligned or beyond end of file", s->l1_offset,
                              s->l1_size);
    if (s->rt_clusters == 0 || (uint64_t)s->rt_clusters * s->cluster_size > QCOW2_MAX_RT_BYTES)
        return vdk_error_setf(errp, EINVAL, "refcount_table_clusters %" PRIu32
                              " out of range", s->rt_clusters);
    uint64_t rtb = (uint64_t)s->rt_clusters * s->cluster_size;
    if (q_offset_in_cluster(s, s->rt_offset) || s->rt_offset == 0 ||
        s->rt_offset > (uint64_t)flen || rtb > (uint64_t)flen - s->rt_offset)
        return vdk_error_setf(errp, EINVAL, "refcount table at 0x%" PRIx64
                              " unaligned or beyond end of file", s->rt_offset);
    if (s->nb_snapshots > 65536)
        return vdk_error_setf(errp, EINVAL, "nb_snapshots %" PRIu32 " too large",
                              s->nb_snapshots);
    if (s->nb_snapshots && (q_offset_in_cluster(s, s->snapshots_offset) ||
                            s->snapshots_offset >= (uint64_t)flen))
        return vdk_error_setf(errp, EINVAL, "snapshot table at 0x%" PRIx64
                              " unaligned or beyond end of file", s->snapshots_offset);
    return qcow2_crypto_check_header(n, (uint64_t)flen, errp);
}

static void qcow2_free_state(struct qcow2_state *s)
{
    qcow2_crypto_close(s);
    qcow2_bitmaps_free(s);
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->rb_cache);
    free(s->l1);
    free(s->rt);
    for (uint32_t i = 0; i < s->nb_exts; i++)
        free(s->exts[i].data);
    free(s->exts);
    free(s->fnames);
    free(s->data_file_name);
    if (s->own_data && s->data)
        vdk_node_unref(s->data);
    pthread_mutex_destroy(&s->lock);
    pthread_rwlock_destroy(&s->free_lock);
    pthread_cond_destroy(&s->inflight_done);
}

bool qcow2_in_file(struct vdk_node *n, uint64_t off)
{
    struct qcow2_state *s = n->opaque;
    if (off < s->flen_lb)
        return true;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return true; /* unknown: let the read fail if it must */
    s->flen_lb = (uint64_t)flen;
    return off < s->flen_lb;
}

unsigned qcow2_write_flags(const struct vdk_node *n)
{
    const struct qcow2_state *s = n->opaque;
    if (s->crypt_method)
        return 0;
    return VDK_REQ_COMPRESSED;
}

static int open_data_file(struct vdk_node *n, const char *override, unsigned flags,
                          struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (!(s->incompat & QCOW2_INCOMPAT_DATA_FILE)) {
        if (override)
            return vdk_error_setf(errp, EINVAL, "'data-file' given but the image has "
                                  "no external data file");
        s->data = n->file;
        return 0;
    }
    const char *name = override ? override : s->data_file_name;
    if (!name)
        return vdk_error_setf(errp, EINVAL, "the image needs an external data file but "
                              "records no name; give one with data-file=");
    char *path = vdk_path_combine(n->filename, name);
    if (!path)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_open_protocol(&s->data, path, NULL, flags & (VDK_O_RDWR | VDK_O_SHARE |
                              VDK_O_DIRECT | VDK_O_UNSAFE), errp);
    if (r < 0)
        vdk_error_prepend(errp, "opening data file '%s'", path);
    free(path);
    if (r == 0)
        s->own_data = true;
    return r;
}

static int qcow2_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t l2c, rbc;
    int r;
    pthread_mutex_init(&s->lock, NULL);
    pthread_rwlock_init(&s->free_lock, NULL);
    pthread_cond_init(&s->inflight_done, NULL);
    s->meta_prealloc = -1;
    const char *df = vdk_opts_get(opts, "data-file");
    const char *sn_id = vdk_opts_get(opts, "snapshot.id");
    const char *sn_name = vdk_opts_get(opts, "snapshot.name");
    if ((r = qcow2_read_header(n, errp)) < 0)
        goto fail;
    if ((r = vdk_opts_get_size(opts, "l2-cache-size", 0, &l2c, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "refcount-cache-size", 0, &rbc, errp)) < 0 ||
        (r = vdk_opts_get_enum(opts, "bitmap-store", bitmap_store_values, 0, errp)) < 0)
        goto fail;
    s->bm_store_close = r == 1;
    uint64_t store_ms;
    if ((r = vdk_opts_get_uint(opts, "bitmap-store-ms", 50, &store_ms, errp)) < 0)
        goto fail;
    if (store_ms > 60000) {
        r = vdk_error_setf(errp, EINVAL, "bitmap-store-ms=%" PRIu64 " is out of range "
                           "(0 to 60000 milliseconds)", store_ms);
        goto fail;
    }
    s->bm_store_ns = store_ms * 1000000;
    s->writable = (flags & VDK_O_RDWR) != 0;
    s->repair_open = (flags & VDK_O_CHECK_REPAIR) != 0;
    if (s->writable && (s->incompat & QCOW2_INCOMPAT_CORRUPT) && !s->repair_open) {
        r = vdk_error_setf(errp, EIO, "qcow2 image is corrupt; it may be opened "
                           "read-only or repaired with 'check -r all'");
        goto fail;
    }
    if ((r = open_data_file(n, df, flags, errp)) < 0)
        goto fail;

    s->l1 = calloc(s->l1_size ? s->l1_size : 1, 8);
    if (!s->l1) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    if (s->l1_size) {
        r = vdk_pread(n->file, s->l1, (uint64_t)s->l1_size * 8, s->l1_offset, 0);
        if (r < 0) {
            vdk_error_setf_errno(errp, r, "could not read the L1 table");
            goto fail;
        }
        for (uint32_t i = 0; i < s->l1_size; i++)
            s->l1[i] = q_be64((uint8_t *)&s->l1[i]);
    }
    /* Cache sizes: default covers the whole disk, at most 32 MiB. */
    uint64_t l2_tables = (qcow2_l1_entries(s, s->size) ? qcow2_l1_entries(s, s->size) : 1);
    if (!l2c)
        l2c = vdk_min_u64(l2_tables * s->cluster_size, QCOW2_L2_CACHE_MAX);
    if (!rbc)
        rbc = l2c / 4;
    uint64_t l2n = l2c / s->cluster_size, rbn = rbc / s->cluster_size;
    l2n = l2n < 2 ? 2 : l2n > QCOW2_CACHE_MAX_ENTRIES ? QCOW2_CACHE_MAX_ENTRIES : l2n;
    rbn = rbn < 2 ? 2 : rbn > QCOW2_CACHE_MAX_ENTRIES ? QCOW2_CACHE_MAX_ENTRIES : rbn;
    if (qcow2_cache_init(&s->l2_cache, (uint32_t)l2n, s->cluster_size) < 0 ||
        qcow2_cache_init(&s->rb_cache, (uint32_t)rbn, s->cluster_size) < 0) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    if ((r = qcow2_refcount_init(n, errp)) < 0)
        goto fail;
    if ((sn_id || sn_name) && (r = qcow2_snapshot_load_tmp(n, sn_id, sn_name, errp)) < 0)
        goto fail;
    /* A damaged snapshot table (qemu refuses every open of it) may be read
       past, but never written beside: a write open validates it whole. */
    if (s->writable && !s->repair_open && (r = qcow2_snapshot_validate(n, errp)) < 0)
        goto fail;

    /* qemu counts whole sectors of the header's size: an odd size shows
       (and converts) rounded down. */
    n->size = vdk_align_down(s->size, 512);
    n->cluster_size = s->cluster_size;
    n->limits.request_alignment = 1;
    n->limits.max_transfer = 0;
    n->limits.opt_transfer = s->cluster_size;
    n->limits.pwrite_zeroes_alignment = 1u << s->sc_bits;
    /* qcow2_discard drops partial clusters itself, after marking the
       bitmaps with the whole request. */
    n->limits.discard_alignment = 1;
    if (s->writable) {
        n->supported_write_flags = qcow2_write_flags(n);
        n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    }
    s->lazy = (s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS) != 0;
    if ((r = qcow2_crypto_open(n, opts, flags, errp)) < 0)
        goto fail;
    /* Before any refcount repair below: check counts the bitmaps' clusters. */
    if ((r = qcow2_bitmaps_open(n, errp)) < 0)
        goto fail;

    if (s->writable) {
        /* Autoclear bits we do not maintain are invalidated by our writes. */
        uint64_t keep = s->autoclear & (QCOW2_AUTOCLEAR_DATA_RAW | QCOW2_AUTOCLEAR_BITMAPS);
        if (s->autoclear != keep && s->version >= 3) {
            uint8_t b[8];
            s->autoclear = keep;
            q_st64(b, keep);
            if ((r = vdk_pwrite(n->file, b, 8, QH_AUTOCLEAR, 0)) < 0) {
                vdk_error_setf_errno(errp, r, "could not update the header");
                goto fail;
            }
        }
        if ((s->incompat & QCOW2_INCOMPAT_DIRTY) && !s->repair_open) {
            /* Refcounts may be stale after a crash with lazy refcounts. */
            struct vdk_check_result res;
            r = qcow2_check(n, &res, VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS, errp);
            if (r < 0) {
                vdk_error_prepend(errp, "repairing refcounts of a dirty image");
                goto fail;
            }
            s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
            if ((r = vdk_flush(n->file)) < 0 || (r = qcow2_write_incompat(n)) < 0) {
                vdk_error_setf_errno(errp, r, "could not update the header");
                goto fail;
            }
        }
    }
    return 0;
fail:
    qcow2_free_state(s);
    return r;
}

static int qcow2_flush(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    if (!s->writable)
        return vdk_flush(n->file);
    pthread_mutex_lock(&s->lock);
    int r = qcow2_flush_metadata(n);
    pthread_mutex_unlock(&s->lock);
    if (r == 0 && s->own_data)
        r = vdk_flush(s->data);
    /* The bitmap data changed since the last store goes out with the data
       this flush covers; the cleared "in use" flag follows that flush and
       is durable at the next one (until then the disk says "in use"). */
    uint64_t gen = 0;
    if (r == 0)
        r = qcow2_bitmaps_flush_begin(n, &gen);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0 && gen)
        r = qcow2_bitmaps_flush_end(n, gen);
    return r;
}

static void qcow2_close(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    qcow2_bitmaps_stop_storer(s);
    if (s->writable && !(n->open_flags & VDK_O_NO_FLUSH_ON_CLOSE)) {
        int r = qcow2_bitmaps_store(n);
        if (r < 0)
            vdk_warn("qcow2 '%s': could not store the dirty bitmaps: %s", n->filename,
                     strerror(-r));
        r = qcow2_flush(n);
        if (r == 0 && s->dirty_set) {
            r = vdk_flush(n->file);
            if (r == 0) {
                s->incompat &= ~QCOW2_INCOMPAT_DIRTY;
                r = qcow2_write_incompat(n);
            }
        }
        if (r < 0)
            vdk_warn("qcow2 '%s': could not write back metadata on close: %s",
                     n->filename, strerror(-r));
    }
    qcow2_free_state(s);
}

int qcow2_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                   struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    info->cluster_size = s->cluster_size;
    info->has_dirty_flag = true;
    info->dirty_flag = (s->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
    info->encrypted = s->crypt_method != 0;
    struct json_object *data = json_object_new_object(), *top = json_object_new_object();
    if (!data || !top) {
        json_object_put(data);
        json_object_put(top);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    json_object_object_add(data, "compat",
                           json_object_new_string(s->version == 2 ? "0.10" : "1.1"));
    json_object_object_add(data, "compression-type",
                           json_object_new_string(s->compression_type ? "zstd" : "zlib"));
    if (s->version >= 3)
        json_object_object_add(data, "lazy-refcounts",
                               json_object_new_boolean(s->compat & QCOW2_COMPAT_LAZY_REFCOUNTS));
    struct json_object *bitmaps = qcow2_bitmaps_json(n);
    if (bitmaps)
        json_object_object_add(data, "bitmaps", bitmaps);
    json_object_object_add(data, "refcount-bits",
                           json_object_new_int(1 << s->refcount_order));
    if (qcow2_crypto_info(n, data) < 0) {
        json_object_put(data);
        json_object_put(top);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    if (s->incompat & QCOW2_INCOMPAT_DATA_FILE) {
        if (s->data_file_name)
            json_object_object_add(data, "data-file",
                                   json_object_new_string(s->data_file_name));
        json_object_object_add(data, "data-file-raw", json_object_new_boolean(s->data_raw));
    }
    if (s->version >= 3) {
        json_object_object_add(data, "corrupt",
                               json_object_new_boolean(s->incompat & QCOW2_INCOMPAT_CORRUPT));
        json_object_object_add(data, "extended-l2", json_object_new_boolean(s->extended_l2));
    }
    json_object_object_add(top, "type", json_object_new_string("qcow2"));
    json_object_object_add(top, "data", data);
    info->format_specific = top;
    return 0;
}

const struct vdk_driver vdk_driver_qcow2 = {
    .name = "qcow2",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct qcow2_state),
    .open_opts = qcow2_open_opts,
    .create_opts = qcow2_create_opts,
    .supports_backing = true,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .create = qcow2_create,
    .create_check = qcow2_create_check,
    .pread = qcow2_pread,
    .pwrite = qcow2_pwrite,
    .pwrite_zeroes = qcow2_pwrite_zeroes,
    .discard = qcow2_discard,
    .flush = qcow2_flush,
    .flush_covers_file = true,
    .block_status = qcow2_crypto_block_status,
    .truncate = qcow2_truncate,
    .get_info = qcow2_get_info,
    .check = qcow2_check,
    .measure = qcow2_measure,
    .amend = qcow2_amend,
    .change_backing_file = qcow2_change_backing_file,
    .reopen = qcow2_reopen,
    .inactivate = qcow2_bitmaps_store,
    .make_empty = qcow2_make_empty,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_goto = qcow2_snapshot_goto,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_list = qcow2_snapshot_list,
    .bitmap_list = qcow2_bitmap_list,
    .bitmap_op = qcow2_bitmap_op,
    .bitmap_status = qcow2_bitmap_status,
    .bitmap_mark = qcow2_bitmap_mark_named,
};
