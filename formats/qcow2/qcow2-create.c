/* SPDX-License-Identifier: MIT */
/*
 * qcow2: image creation with qemu-img's option names and defaults, the
 * header writer shared with amend and change_backing_file, and measure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

extern const struct vdk_driver vdk_driver_qcow2;

static const char *const compat_values[] = { "0.10", "1.1", "v2", "v3", NULL };
static const char *const ctype_values[] = { "zlib", "zstd", NULL };

/* In the order qemu-img prints them in its "Formatting" line; only the
   options qemu-img shows by default have a default value here. */
const struct vdk_opt_desc qcow2_create_opts[] = {
    { "encryption", VDK_OPT_BOOL, "Encrypt the image with format 'aes'. (Deprecated in "
      "favor of encrypt.format=aes)", NULL, NULL },
    { "encrypt.format", VDK_OPT_STRING, "Encrypt the image, format choices: 'aes', "
      "'luks'", NULL, NULL },
    { "encrypt.key-secret", VDK_OPT_STRING, "ID of secret providing qcow AES key or LUKS "
      "passphrase", NULL, NULL },
    { "encrypt.cipher-alg", VDK_OPT_STRING, "Name of encryption cipher algorithm", NULL,
      NULL },
    { "encrypt.cipher-mode", VDK_OPT_STRING, "Name of encryption cipher mode", NULL, NULL },
    { "encrypt.ivgen-alg", VDK_OPT_STRING, "Name of IV generator algorithm", NULL, NULL },
    { "encrypt.ivgen-hash-alg", VDK_OPT_STRING, "Name of IV generator hash algorithm",
      NULL, NULL },
    { "encrypt.hash-alg", VDK_OPT_STRING, "Name of encryption hash algorithm", NULL, NULL },
    { "encrypt.iter-time", VDK_OPT_NUMBER, "Time to spend in PBKDF in milliseconds", NULL,
      NULL },
    { "cluster_size", VDK_OPT_SIZE, "qcow2 cluster size", "65536", NULL },
    { "extended_l2", VDK_OPT_BOOL, "Extended L2 tables", "off", NULL },
    { "preallocation", VDK_OPT_STRING, "Preallocation mode (allowed values: off, "
      "metadata, falloc, full)", NULL, NULL },
    { "compression_type", VDK_OPT_STRING, "Compression method used for image cluster "
      "compression", "zlib", NULL },
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "compat", VDK_OPT_STRING, "Compatibility level (v2 [0.10] or v3 [1.1])", NULL,
      NULL },
    { "backing_file", VDK_OPT_STRING, "File name of a base image", NULL, NULL },
    { "backing_fmt", VDK_OPT_STRING, "Image format of the base image", NULL, NULL },
    { "data_file", VDK_OPT_STRING, "File name of an external data file", NULL, NULL },
    { "data_file_raw", VDK_OPT_BOOL, "The external data file must stay valid as a raw "
      "image", NULL, NULL },
    { "lazy_refcounts", VDK_OPT_BOOL, "Postpone refcount updates", "off", NULL },
    { "refcount_bits", VDK_OPT_NUMBER, "Width of a reference count entry in bits", "16",
      NULL },
    { NULL, 0, NULL, NULL, NULL },
};

/* Names of the features we know, written into v3 headers as qemu does. */
static const struct { uint8_t type, bit; const char *name; } known_features[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

static size_t put_ext(uint8_t *h, size_t off, size_t cap, uint32_t type, const void *d,
                      uint32_t len)
{
    size_t need = 8 + vdk_align_up(len, 8);
    if (off + need > cap)
        return 0;
    q_st32(h + off, type);
    q_st32(h + off + 4, len);
    memcpy(h + off + 8, d, len);
    return need;
}

int qcow2_write_header(struct vdk_node *n, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    size_t cap = s->cluster_size, off, k;
    uint8_t *h = vdk_blk_alloc(cap);
    if (!h)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    q_st32(h, QCOW2_MAGIC);
    q_st32(h + QH_VERSION, s->version);
    q_st32(h + QH_CLUSTER_BITS, s->cluster_bits);
    q_st64(h + QH_SIZE, s->size);
    q_st32(h + QH_CRYPT_METHOD, s->crypt_method);
    q_st32(h + QH_L1_SIZE, s->l1_size);
    q_st64(h + QH_L1_OFFSET, s->l1_offset);
    q_st64(h + QH_RT_OFFSET, s->rt_offset);
    q_st32(h + QH_RT_CLUSTERS, s->rt_clusters);
    q_st32(h + QH_NB_SNAPSHOTS, s->nb_snapshots);
    q_st64(h + QH_SNAPSHOTS_OFFSET, s->snapshots_offset);
    if (s->version >= 3) {
        s->header_length = QCOW2_V3_HEADER_LEN_CT;
        q_st64(h + QH_INCOMPAT, s->incompat);
        q_st64(h + QH_COMPAT, s->compat);
        q_st64(h + QH_AUTOCLEAR, s->autoclear);
        q_st32(h + QH_REFCOUNT_ORDER, s->refcount_order);
        q_st32(h + QH_HEADER_LENGTH, s->header_length);
        h[QH_COMPRESSION_TYPE] = s->compression_type;
    } else {
        s->header_length = QCOW2_V2_HEADER_LEN;
    }
    off = s->header_length;
    bool ok = true;
    if (n->backing_fmt && n->backing_file)
        ok = (k = put_ext(h, off, cap, QCOW2_EXT_BACKING_FMT, n->backing_fmt,
                          (uint32_t)strlen(n->backing_fmt))) && (off += k);
    if (ok && s->data_file_name)
        ok = (k = put_ext(h, off, cap, QCOW2_EXT_DATA_FILE, s->data_file_name,
                          (uint32_t)strlen(s->data_file_name))) && (off += k);
    uint8_t crypto_ext[16], bm_ext[24];
    if (ok && qcow2_crypto_ext(s, crypto_ext))
        ok = (k = put_ext(h, off, cap, QCOW2_EXT_CRYPTO, crypto_ext, 16)) && (off += k);
    /* qemu-img writes no feature table with clusters under 8 KiB (observed
       with 7.2: 512..4096 have none), which also leaves room for the
       encryption extension in a 512-byte header cluster. */
    if (ok && s->version >= 3 && s->cluster_size >= 8192) {
        uint8_t ft[sizeof(known_features) / sizeof(known_features[0]) * 48];
        memset(ft, 0, sizeof(ft));
        for (size_t i = 0; i < sizeof(known_features) / sizeof(known_features[0]); i++) {
            ft[i * 48] = known_features[i].type;
            ft[i * 48 + 1] = known_features[i].bit;
            memcpy(ft + i * 48 + 2, known_features[i].name, strlen(known_features[i].name));
        }
        ok = (k = put_ext(h, off, cap, QCOW2_EXT_FEATURES, ft, sizeof(ft))) && (off += k);
    }
    if (ok && qcow2_bitmap_ext(s, bm_ext))
        ok = (k = put_ext(h, off, cap, QCOW2_EXT_BITMAPS, bm_ext, 24)) && (off += k);
    for (uint32_t i = 0; ok && i < s->nb_exts; i++)
        ok = (k = put_ext(h, off, cap, s->exts[i].type, s->exts[i].data, s->exts[i].len)) &&
             (off += k);
    ok = ok && off + 8 <= cap;
    off += 8; /* end of extensions (zeroed) */
    if (ok && n->backing_file) {
        size_t bl = strlen(n->backing_file);
        ok = bl <= QCOW2_MAX_BACKING_NAME && off + bl <= cap;
        if (ok) {
            memcpy(h + off, n->backing_file, bl);
            q_st64(h + QH_BACKING_OFFSET, off);
            q_st32(h + QH_BACKING_SIZE, (uint32_t)bl);
            off += bl;
        }
    }
    int r;
    if (!ok)
        r = vdk_error_setf(errp, ENOSPC, "the qcow2 header does not fit in one cluster "
                           "(backing file name or extensions too long)");
    else if ((r = vdk_pwrite(n->file, h, vdk_align_up(off, 512) < cap ?
                             vdk_align_up(off, 512) : cap, 0, 0)) < 0)
        vdk_error_setf_errno(errp, r, "could not write the qcow2 header");
    vdk_blk_free(h);
    return r;
}

struct create_params {
    uint64_t size;
    int version;
    uint32_t cluster_bits;
    uint32_t refcount_order;
    bool lazy, extl2, data_raw;
    uint64_t crypt_hdr;       /* LUKS header bytes, 0: not encrypted */
    int ctype;
    int prealloc;
    const char *backing, *backing_fmt, *data_file;
};

static int parse_params(struct vdk_opts *opts, struct create_params *p, bool need_size,
                        struct vdk_error **errp)
{
    uint64_t cs, rb;
    int r;
    memset(p, 0, sizeof(*p));
    if ((r = vdk_opts_get_size(opts, "size", 0, &p->size, errp)) < 0)
        return r;
    int c = vdk_opts_get_enum(opts, "compat", compat_values, 1, errp);
    if (c < 0)
        return c;
    p->version = (c == 0 || c == 2) ? 2 : 3;
    p->backing = vdk_opts_get(opts, "backing_file");
    p->backing_fmt = vdk_opts_get(opts, "backing_fmt");
    p->data_file = vdk_opts_get(opts, "data_file");
    if ((r = vdk_opts_get_bool(opts, "data_file_raw", false, &p->data_raw, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "lazy_refcounts", false, &p->lazy, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "extended_l2", false, &p->extl2, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "cluster_size", 65536, &cs, errp)) < 0 ||
        (r = vdk_opts_get_uint(opts, "refcount_bits", 16, &rb, errp)) < 0)
        return r;
    if ((r = qcow2_crypto_create_check(opts, need_size, &p->crypt_hdr, errp)) < 0)
        return r;
    p->ctype = vdk_opts_get_enum(opts, "compression_type", ctype_values, 0, errp);
    if (p->ctype < 0)
        return p->ctype;
    p->prealloc = vdk_opts_get_enum(opts, "preallocation", vdk_prealloc_names, 0, errp);
    if (p->prealloc < 0)
        return p->prealloc;
    if (!vdk_is_pow2(cs) || cs < 512 || cs > (2u << 20))
        return vdk_error_setf(errp, EINVAL, "Cluster size must be a power of two between "
                              "512 and 2048k");
    p->cluster_bits = (uint32_t)__builtin_ctzll(cs);
    if (!vdk_is_pow2(rb) || rb > 64)
        return vdk_error_setf(errp, EINVAL, "Refcount width must be a power of two and "
                              "may not exceed 64 bits");
    p->refcount_order = (uint32_t)__builtin_ctzll(rb);
    if (p->version == 2) {
        if (rb != 16)
            return vdk_error_setf(errp, EINVAL, "different refcount widths than 16 bits "
                                  "require compatibility level 1.1 or above (use compat=1.1 "
                                  "or greater)");
        if (p->lazy)
            return vdk_error_setf(errp, EINVAL, "lazy refcounts only supported with "
                                  "compatibility level 1.1 and above (use compat=1.1 or "
                                  "greater)");
        if (p->extl2)
            return vdk_error_setf(errp, EINVAL, "extended L2 entries are only supported "
                                  "with compatibility level 1.1 and above (use compat=1.1 "
                                  "or greater)");
        if (p->ctype)
            return vdk_error_setf(errp, EINVAL, "non-zlib compression type is only "
                                  "supported with compatibility level 1.1 and above (use "
                                  "compat=1.1 or greater)");
        if (p->data_file)
            return vdk_error_setf(errp, EINVAL, "External data files are only supported "
                                  "with compatibility level 1.1 and above (use version=v3 "
                                  "or greater)");
    }
    if (p->extl2 && cs < 16384)
        return vdk_error_setf(errp, EINVAL, "extended L2 entries are only supported with "
                              "cluster sizes of at least 16384 bytes");
    if (p->data_raw && !p->data_file)
        return vdk_error_setf(errp, EINVAL, "data_file_raw can only be used with data_file");
    if (p->data_raw && p->backing)
        return vdk_error_setf(errp, EINVAL, "backing file and data_file_raw cannot be "
                              "used together");
    if (p->backing_fmt && !p->backing)
        return vdk_error_setf(errp, EINVAL, "backing format cannot be used without a "
                              "backing file");
    if (p->backing && p->prealloc != VDK_PREALLOC_OFF && !p->extl2)
        return vdk_error_setf(errp, EINVAL, "backing file and preallocation can only be "
                              "used at the same time if extended_l2 is on");
    if (need_size && !vdk_opts_has(opts, "size") && !p->backing)
        return vdk_error_setf(errp, EINVAL, "image size must be given (size=)");
    if (p->size > QCOW2_MAX_SIZE || p->size % 512)
        return vdk_error_setf(errp, EINVAL, "image size must be a multiple of 512 bytes "
                              "and at most 2^62 bytes");
    return 0;
}

/* Size of the backing image when no size is given (qemu-img's rule). */
static int backing_size(const char *filename, const struct create_params *p, uint64_t *out,
                        struct vdk_error **errp)
{
    char *path = vdk_path_combine(filename, p->backing);
    struct vdk_node *b = NULL;
    if (!path)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_open(&b, path, p->backing_fmt, NULL, VDK_O_SHARE | VDK_O_NO_BACKING, errp);
    free(path);
    if (r < 0) {
        vdk_error_prepend(errp, "could not open backing file '%s' to get its size",
                          p->backing);
        return r;
    }
    int64_t len = vdk_get_length(b);
    vdk_close(b);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "could not get the backing file size");
    *out = (uint64_t)len;
    return 0;
}

int qcow2_create_check(const char *filename, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct create_params p;
    uint64_t size;
    int r = parse_params(opts, &p, true, errp);
    if (r == 0 && !vdk_opts_has(opts, "size") && p.backing)
        r = backing_size(filename, &p, &size, errp);
    return r;
}

static int qcow2_format(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                        const struct create_params *pp, struct vdk_error **errp);

int qcow2_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                 struct vdk_error **errp)
{
    struct create_params p;
    int r = parse_params(opts, &p, true, errp);
    if (r < 0)
        return r;
    if (!vdk_opts_has(opts, "size") && p.backing &&
        (r = backing_size(filename, &p, &p.size, errp)) < 0)
        return r;
    if (!p.data_file)
        return qcow2_format(filename, file, opts, &p, errp);

    /* The data file is removed again if it is new and the image fails. */
    char *dpath = vdk_path_combine(filename, p.data_file);
    struct vdk_opts *dopts = vdk_opts_new();
    struct vdk_created_file created;
    char sz[32];
    snprintf(sz, sizeof(sz), "%" PRIu64, p.data_raw ? p.size : 0);
    if (!dpath || !dopts || vdk_opts_set(dopts, "size", sz) < 0) {
        free(dpath);
        vdk_opts_free(dopts);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    vdk_created_file_before(&created, dpath);
    r = vdk_create("file", dpath, dopts, errp);
    vdk_created_file_after(&created, dpath);
    if (r < 0)
        vdk_error_prepend(errp, "creating data file '%s'", dpath);
    else if ((r = qcow2_format(filename, file, opts, &p, errp)) < 0)
        vdk_created_file_remove(&created, dpath);
    free(dpath);
    return r;
}

/* Write a new image into file as planned in *pp. */
static int qcow2_format(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                        const struct create_params *pp, struct vdk_error **errp)
{
    struct create_params p = *pp;
    int r;

    /* Minimal image: header, refcount table, one refcount block, no L1
       entries; then grow L1 and preallocate through the driver itself. */
    uint64_t cs = 1ull << p.cluster_bits;
    struct vdk_error *err = NULL;
    if ((r = vdk_truncate(file, 0, VDK_PREALLOC_OFF, true, &err)) < 0) {
        vdk_error_propagate(errp, err);
        return r;
    }
    struct vdk_node tmp;
    struct qcow2_state st;
    memset(&tmp, 0, sizeof(tmp));
    memset(&st, 0, sizeof(st));
    tmp.drv = &vdk_driver_qcow2;
    tmp.file = file;
    tmp.opaque = &st;
    tmp.filename = (char *)filename;
    tmp.open_flags = VDK_O_RDWR;
    st.version = (uint32_t)p.version;
    st.cluster_bits = p.cluster_bits;
    st.cluster_size = (uint32_t)cs;
    st.size = 0;
    st.rt_offset = cs;
    st.rt_clusters = 1;
    st.refcount_order = p.refcount_order;
    st.compression_type = (uint8_t)p.ctype;
    if (p.ctype)
        st.incompat |= QCOW2_INCOMPAT_COMPRESSION;
    if (p.extl2)
        st.incompat |= QCOW2_INCOMPAT_EXTL2;
    if (p.data_file) {
        st.incompat |= QCOW2_INCOMPAT_DATA_FILE;
        st.data_file_name = (char *)p.data_file;
        if (p.data_raw)
            st.autoclear |= QCOW2_AUTOCLEAR_DATA_RAW;
    }
    if (p.lazy)
        st.compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
    tmp.backing_file = (char *)p.backing;
    tmp.backing_fmt = (char *)p.backing_fmt;
    uint8_t *blk = vdk_blk_alloc(cs);
    if (!blk)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    /* The header's whole cluster is written, zeros after the header, as
       qemu-img does: same bytes and the same allocated blocks (libvirt
       shows those as the volume's allocation). */
    memset(blk, 0, cs);
    r = vdk_pwrite(file, blk, cs, 0, 0);
    if (r < 0)
        vdk_error_setf_errno(errp, r, "could not write the header");
    else
        r = qcow2_write_header(&tmp, errp);
    if (r == 0) {
        q_st64(blk, 2 * cs);
        r = vdk_pwrite(file, blk, cs, cs, 0);
        memset(blk, 0, cs);
        /* Clusters 0..2 in use. */
        for (uint64_t i = 0; i < 3; i++)
            qcow2_rb_set(&st, blk, i, 1);
        if (r == 0)
            r = vdk_pwrite(file, blk, cs, 2 * cs, 0);
        if (r < 0)
            vdk_error_setf_errno(errp, r, "could not write the refcount table");
    }
    vdk_blk_free(blk);
    if (r < 0)
        return r;

    /* Open what we wrote and size it. */
    struct vdk_node *img = NULL;
    struct vdk_opts *oo = vdk_opts_new();
    if (!oo)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memset(&st, 0, sizeof(st));
    tmp.backing_file = NULL;
    tmp.backing_fmt = NULL;
    r = vdk_driver_qcow2.open(&tmp, oo, VDK_O_RDWR, errp);
    vdk_opts_free(oo);
    free(tmp.backing_file);
    free(tmp.backing_fmt);
    tmp.backing_file = tmp.backing_fmt = NULL;
    if (r < 0)
        return r;
    img = &tmp;
    /* A raw data file is the guest content: map all of it (as qemu-img). */
    enum vdk_prealloc pa = (enum vdk_prealloc)p.prealloc;
    if (p.data_raw && pa == VDK_PREALLOC_OFF)
        pa = VDK_PREALLOC_METADATA;
    r = qcow2_truncate(img, p.size, pa, false, errp);
    /* As qemu: the LUKS header goes after the L1 table (and preallocation). */
    if (r == 0 && p.crypt_hdr) {
        img->backing_file = (char *)p.backing; /* the header is rewritten */
        img->backing_fmt = (char *)p.backing_fmt;
        r = qcow2_crypto_setup(img, opts, errp);
        img->backing_file = img->backing_fmt = NULL;
    }
    if (r == 0 && (r = vdk_driver_qcow2.flush(img)) < 0)
        vdk_error_setf_errno(errp, r, "could not write the image metadata");
    vdk_driver_qcow2.close(img);
    return r;
}

/* Metadata clusters for a fully allocated image (qemu's formula). */
static uint64_t refcount_meta(uint64_t clusters, uint64_t cs, uint32_t order)
{
    uint64_t per_block = cs * 8 >> order, per_table = cs / 8;
    uint64_t table = 0, blocks = 0, total = 0, last;
    do {
        last = total;
        blocks = (clusters + table + blocks + per_block - 1) / per_block;
        table = (blocks + per_table - 1) / per_table;
        total = clusters + blocks + table;
    } while (total != last);
    return (blocks + table) * cs;
}

static uint64_t prealloc_size(uint64_t size, uint64_t cs, uint32_t order, bool extl2)
{
    uint64_t esz = extl2 ? 16 : 8;
    uint64_t aligned = vdk_align_up(size, cs);
    uint64_t meta = cs;
    uint64_t nl2e = vdk_align_up(aligned / cs, cs / esz);
    meta += nl2e * esz;
    uint64_t nl1e = vdk_align_up(nl2e * esz / cs, cs / 8);
    meta += nl1e * 8;
    meta += refcount_meta((meta + aligned) / cs, cs, order);
    return meta + aligned;
}

int qcow2_measure(struct vdk_opts *in_opts, struct vdk_node *src, uint64_t size,
                  struct vdk_measure *out, struct vdk_error **errp)
{
    struct create_params p;
    struct vdk_opts *opts = in_opts ? vdk_opts_clone(in_opts) : vdk_opts_new();
    if (!opts)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = parse_params(opts, &p, false, errp);
    vdk_opts_free(opts);
    if (r < 0)
        return r;
    uint64_t cs = 1ull << p.cluster_bits, required = 0, vsize = size;
    if (!src && vdk_opts_has(in_opts, "size"))
        vsize = p.size;
    if (src) {
        int64_t len = vdk_get_length(src);
        if (len < 0)
            return vdk_error_setf_errno(errp, (int)len, "could not get the source size");
        vsize = (uint64_t)len;
        if (p.backing) {
            required = vdk_align_up(vsize, cs);
        } else {
            uint64_t off = 0, pnum;
            while (off < vsize) {
                int st = vdk_block_status_above(src, NULL, off, vsize - off, &pnum, NULL,
                                                NULL, NULL);
                if (st < 0)
                    return vdk_error_setf_errno(errp, st, "could not read the source "
                                                "allocation map");
                if (!(st & VDK_BS_ZERO) && (st & VDK_BS_DATA)) {
                    pnum = vdk_align_up(off + pnum, cs) - off;
                    required += off % cs + pnum;
                }
                off += pnum;
            }
        }
    }
    vsize = vdk_align_up(vsize, cs);
    if (p.prealloc == VDK_PREALLOC_FULL || p.prealloc == VDK_PREALLOC_FALLOC)
        required = vsize;
    out->fully_allocated = prealloc_size(vsize, cs, p.refcount_order, p.extl2) +
                           vdk_align_up(p.crypt_hdr, cs);
    out->required = out->fully_allocated - vsize + required;
    /* qemu counts bitmaps only from a qcow2 v3 source into a v3 image. */
    out->has_bitmaps = false;
    out->bitmaps = 0;
    if (src && src->drv == &vdk_driver_qcow2 && p.version >= 3 &&
        ((struct qcow2_state *)src->opaque)->version >= 3) {
        out->bitmaps = qcow2_bitmaps_measure(src, cs);
        out->has_bitmaps = true;
    }
    return 0;
}
