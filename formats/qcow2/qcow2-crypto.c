/* SPDX-License-Identifier: MIT */
/*
 * qcow2: LUKS encryption (encrypt.format=luks), laid out as QEMU does.
 *
 * The header says crypt_method = 2 and the 0x0537be77 extension gives the
 * offset and length of a LUKS1 header stored in clusters of the qcow2 file
 * (allocated after the L1 table at create, refcounted like any other
 * metadata).  Every data cluster holds LUKS payload sectors; a sector's IV
 * number is its host offset / 512, not its guest offset, so copying a
 * cluster elsewhere means decrypting and encrypting again.  Compressed
 * clusters are never written to an encrypted image, and zero clusters stay
 * zero clusters (they read as zeros without being decrypted).
 *
 * The LUKS side (header, keyslots, ciphers) lives in formats/luks; this
 * file only places it in the qcow2 file and calls it on the data path.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks/luks.h"
#include "formats/qcow2/qcow2.h"
#include "vdk/secret.h"

/* Bound on the extension's length field: a LUKS1 header with a 512-bit
   key is 2 MiB, a LUKS2 one 16 MiB by default. */
#define QCOW2_CRYPTO_MAX_HDR (256ull << 20)
/* Largest bounce buffer one in-place write encrypts into at a time. */
#define QCOW2_CRYPTO_BOUNCE (1u << 20)

/* The create keys QEMU's qcow2 driver takes under "encrypt." (its LUKS1
   layout only, so QEMU can always open what we make). */
static const char *const create_keys[] = {
    "key-secret", "cipher-alg", "cipher-mode", "ivgen-alg", "ivgen-hash-alg",
    "hash-alg", "iter-time", NULL,
};

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

int qcow2_crypto_parse_ext(struct vdk_node *n, const uint8_t *d, uint32_t len,
                           struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    if (s->crypt_method != 2)
        return vdk_error_setf(errp, EINVAL, "encryption header extension present but "
                              "the image is not LUKS encrypted (crypt_method %" PRIu32 ")",
                              s->crypt_method);
    if (len != 16)
        return vdk_error_setf(errp, EINVAL, "encryption header extension is %" PRIu32
                              " bytes, expected 16", len);
    s->crypto_offset = q_be64(d);
    s->crypto_length = q_be64(d + 8);
    s->has_crypto_ext = true;
    return 0;
}

int qcow2_crypto_check_header(struct vdk_node *n, uint64_t flen, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    uint64_t off = s->crypto_offset, len = s->crypto_length, cs = s->cluster_size;
    switch (s->crypt_method) {
    case 0:
        return 0;
    case 1:
        return vdk_error_setf(errp, ENOTSUP, "AES-encrypted qcow2 images (crypt_method 1) "
                              "are not supported; convert the image to "
                              "encrypt.format=luks with qemu-img");
    case 2:
        break;
    default:
        return vdk_error_setf(errp, EINVAL, "unknown encryption method %" PRIu32,
                              s->crypt_method);
    }
    if (!s->has_crypto_ext)
        return vdk_error_setf(errp, EINVAL, "LUKS encryption header extension missing");
    if (q_offset_in_cluster(s, off) || off < cs)
        return vdk_error_setf(errp, EINVAL, "encryption header offset 0x%" PRIx64 " is "
                              "not a cluster-aligned offset after the header", off);
    if (len < 592 || len > QCOW2_CRYPTO_MAX_HDR)
        return vdk_error_setf(errp, EINVAL, "encryption header length %" PRIu64
                              " out of range", len);
    if (off > flen || len > flen - off)
        return vdk_error_setf(errp, EINVAL, "encryption header (offset 0x%" PRIx64 ", %"
                              PRIu64 " bytes) beyond end of file", off, len);
    if (overlaps(off, len, s->l1_offset, (uint64_t)s->l1_size * 8))
        return vdk_error_setf(errp, EINVAL, "encryption header overlaps the L1 table");
    if (overlaps(off, len, s->rt_offset, (uint64_t)s->rt_clusters * cs))
        return vdk_error_setf(errp, EINVAL, "encryption header overlaps the refcount "
                              "table");
    if (s->nb_snapshots && overlaps(off, len, s->snapshots_offset, cs))
        return vdk_error_setf(errp, EINVAL, "encryption header overlaps the snapshot "
                              "table");
    return 0;
}

/* Refcount blocks and active L2 tables (known once the tables are read). */
static const char *table_overlap(const struct qcow2_state *s)
{
    uint64_t off = s->crypto_offset, len = s->crypto_length, cs = s->cluster_size;
    for (uint64_t i = 0; i < s->rt_hi; i++)
        if (s->rt[i] && overlaps(off, len, s->rt[i] & ~(cs - 1), cs))
            return "a refcount block";
    for (uint32_t i = 0; i < s->l1_size; i++) {
        uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
        if (l2 && overlaps(off, len, l2, cs))
            return "an L2 table";
    }
    return NULL;
}

int qcow2_crypto_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    const char *id = vdk_opts_get(opts, "encrypt.key-secret");
    const char *fmt = vdk_opts_get(opts, "encrypt.format");
    if (!s->crypt_method) {
        /* As qemu: a key for an unencrypted image is ignored, a format not. */
        if (fmt)
            return vdk_error_setf(errp, EINVAL, "No encryption in image header, but "
                                  "options specified format '%s'", fmt);
        return 0;
    }
    if (fmt && strcmp(fmt, "luks") != 0)
        return vdk_error_setf(errp, EINVAL, "Header reported 'luks' encryption format "
                              "but options specify '%s'", fmt);
    const char *what = table_overlap(s);
    if (what)
        return vdk_error_setf(errp, EINVAL, "encryption header overlaps %s", what);
    /* Metadata-only opens (info) read the header without a passphrase. */
    bool nokey = (flags & VDK_O_NO_IO) != 0;
    char *pass = NULL;
    size_t plen = 0;
    int r;
    struct vdk_error *err = NULL;
    if (!nokey && (r = vdk_luks_get_secret(id, &pass, &plen, &err)) < 0) {
        if (id) {
            vdk_error_propagate(errp, err);
            return r;
        }
        vdk_error_free(err);
        return vdk_error_setf(errp, EINVAL, "Parameter 'encrypt.key-secret' is "
                              "required for cipher (or set VDK_SECRET)");
    }
    struct vdk_luks_limits lim;
    r = vdk_luks_limits_from_opts(&lim, opts, "encrypt.", errp);
    if (r == 0)
        r = vdk_luks_open(&s->luks, n->file, s->crypto_offset, s->crypto_length, NULL, 0,
                          VDK_LUKS_NO_KEY, errp);
    if (r == 0 && !nokey) {
        vdk_luks_set_limits(s->luks, &lim);
        if ((r = vdk_luks_unlock(s->luks, pass, plen, errp)) < 0)
            vdk_luks_close(s->luks);
    }
    vdk_secret_free(pass, plen);
    if (r < 0) {
        s->luks = NULL;
        if (r != -EPERM)
            vdk_error_prepend(errp, "encryption header");
        return r;
    }
    uint32_t ss = vdk_luks_sector_size(s->luks);
    if (ss > (1u << s->sc_bits)) {
        qcow2_crypto_close(s);
        return vdk_error_setf(errp, ENOTSUP, "LUKS sector size %" PRIu32 " larger than "
                              "the qcow2 (sub)cluster", ss);
    }
    s->crypto_locked = nokey;
    /* As qemu's has_zero_init: preallocated clusters of an encrypted image
       hold raw zeros, which decrypt to noise, so a convert must write its
       zeros.  Preallocation shows as a first L1 entry in a new image. */
    n->no_zero_init = s->l1_size && s->l1[0];
    if (n->limits.request_alignment < ss)
        n->limits.request_alignment = ss;
    n->supported_write_flags &= ~(unsigned)VDK_REQ_COMPRESSED;
    return 0;
}

void qcow2_crypto_close(struct qcow2_state *s)
{
    vdk_luks_close(s->luks);
    s->luks = NULL;
}

/* The "encrypt.*" keys of opts without the prefix and without "format";
   NULL on allocation failure.  The originals stay (marked used). */
static struct vdk_opts *encrypt_opts(struct vdk_opts *opts, const char **format)
{
    struct vdk_opts *copy = vdk_opts_clone(opts);
    const char *k, *v;
    for (size_t i = 0; vdk_opts_nth(opts, i, &k, &v); i++)
        if (strncmp(k, "encrypt.", 8) == 0)
            (void)vdk_opts_get(opts, k);
    *format = vdk_opts_get(opts, "encrypt.format");
    struct vdk_opts *e = copy ? vdk_opts_extract_prefix(copy, "encrypt") : NULL;
    vdk_opts_free(copy);
    if (e)
        vdk_opts_del(e, "format");
    return e;
}

int qcow2_crypto_create_check(struct vdk_opts *opts, bool need_secret,
                              uint64_t *hdr_bytes, struct vdk_error **errp)
{
    bool aes = false;
    const char *fmt, *k, *v;
    *hdr_bytes = 0;
    int r = vdk_opts_get_bool(opts, "encryption", false, &aes, errp);
    if (r < 0)
        return r;
    struct vdk_opts *e = encrypt_opts(opts, &fmt);
    if (!e)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (aes || (fmt && strcmp(fmt, "aes") == 0)) {
        r = vdk_error_setf(errp, ENOTSUP, "qcow2 AES encryption is insecure and not "
                           "supported; use encrypt.format=luks");
    } else if (fmt && strcmp(fmt, "luks") != 0) {
        r = vdk_error_setf(errp, EINVAL, "Invalid parameter '%s' for encrypt.format", fmt);
    } else if (!fmt && vdk_opts_count(e)) {
        r = vdk_error_setf(errp, EINVAL, "Parameter 'encrypt.format' is missing");
    } else if (!fmt) {
        vdk_opts_free(e);
        return 0;
    }
    for (size_t i = 0; r == 0 && vdk_opts_nth(e, i, &k, &v); i++) {
        bool known = false;
        for (size_t j = 0; create_keys[j]; j++)
            known |= strcmp(k, create_keys[j]) == 0;
        if (!known)
            r = vdk_error_setf(errp, EINVAL, "invalid option 'encrypt.%s' for qcow2 "
                               "encryption", k);
    }
    struct vdk_luks_params p;
    char *id = NULL, *pass = NULL;
    size_t plen = 0;
    if (r == 0)
        r = vdk_luks_params_from_opts(&p, &id, e, errp);
    if (r == 0 && !need_secret && !id)
        r = vdk_error_setf(errp, EINVAL, "Parameter 'encrypt.key-secret' is required "
                           "for cipher");
    /* Before anything is written: the passphrase must be there. */
    if (r == 0 && need_secret && (r = vdk_luks_get_secret(id, &pass, &plen, errp)) == 0)
        vdk_secret_free(pass, plen);
    if (r == 0)
        *hdr_bytes = vdk_luks_header_size(&p);
    free(id);
    vdk_opts_free(e);
    return r < 0 ? r : 1;
}

int qcow2_crypto_setup(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    const char *fmt;
    struct vdk_opts *e = encrypt_opts(opts, &fmt);
    struct vdk_luks_params p;
    char *id = NULL, *pass = NULL;
    size_t plen = 0;
    int r = e ? 0 : vdk_error_setf(errp, ENOMEM, "out of memory");
    if (r == 0 && !fmt) {
        vdk_opts_free(e);
        return 0;
    }
    if (r == 0)
        r = vdk_luks_params_from_opts(&p, &id, e, errp);
    if (r == 0)
        r = vdk_luks_get_secret(id, &pass, &plen, errp);
    uint64_t hs = r == 0 ? vdk_luks_header_size(&p) : 0;
    uint64_t clen = vdk_align_up(hs, s->cluster_size);
    int64_t off = 0;
    if (r == 0) {
        /* As qemu: whole clusters after the L1 table, zero-filled so the
           unused keyslot areas have a predictable content. */
        pthread_mutex_lock(&s->lock);
        off = qcow2_alloc_clusters(n, clen >> s->cluster_bits);
        r = off < 0 ? (int)off : qcow2_flush_metadata(n);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
            vdk_error_setf_errno(errp, r, "could not allocate the encryption header");
    }
    if (r == 0 && (r = vdk_pwrite_zeroes(n->file, (uint64_t)off, clen, 0)) < 0)
        vdk_error_setf_errno(errp, r, "could not write the encryption header");
    if (r == 0)
        r = vdk_luks_format(&s->luks, n->file, (uint64_t)off, &p, pass, plen, errp);
    if (r == 0) {
        s->crypt_method = 2;
        s->has_crypto_ext = true;
        s->crypto_offset = (uint64_t)off;
        s->crypto_length = hs;
        pthread_mutex_lock(&s->lock);
        r = qcow2_write_header(n, errp);
        pthread_mutex_unlock(&s->lock);
    }
    if (r == 0 && (r = vdk_flush(n->file)) < 0)
        vdk_error_setf_errno(errp, r, "could not flush the header");
    vdk_secret_free(pass, plen);
    free(id);
    vdk_opts_free(e);
    return r;
}

bool qcow2_crypto_ext(const struct qcow2_state *s, uint8_t out[16])
{
    if (!s->has_crypto_ext)
        return false;
    q_st64(out, s->crypto_offset);
    q_st64(out + 8, s->crypto_length);
    return true;
}

bool qcow2_crypto_overlaps(const struct qcow2_state *s, uint64_t off, uint64_t len)
{
    return s->has_crypto_ext &&
           overlaps(off, len, s->crypto_offset,
                    vdk_align_up(s->crypto_length, s->cluster_size));
}

int qcow2_crypto_info(struct vdk_node *n, struct json_object *data)
{
    struct qcow2_state *s = n->opaque;
    struct json_object *l = NULL, *enc;
    if (!s->luks)
        return 0;
    if (vdk_luks_info(s->luks, &l) < 0 || !(enc = json_object_new_object())) {
        json_object_put(l);
        return -ENOMEM;
    }
    /* qemu's QCryptoBlockInfo: the LUKS members plus "format", which
       qemu-img prints just before "cipher-mode". */
    json_object_object_foreach(l, key, val) {
        if (strcmp(key, "cipher-mode") == 0)
            json_object_object_add(enc, "format", json_object_new_string("luks"));
        json_object_object_add(enc, key, json_object_get(val));
    }
    json_object_put(l);
    json_object_object_add(data, "encrypt", enc);
    return 0;
}

int qcow2_crypto_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct qcow2_state *s = n->opaque;
    const char *k, *v;
    bool any = false;
    for (size_t i = 0; vdk_opts_nth(opts, i, &k, &v); i++)
        any |= strncmp(k, "encrypt.", 8) == 0;
    if (!any)
        return 0;
    struct vdk_opts *e = vdk_opts_extract_prefix(opts, "encrypt");
    if (!e)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *fmt = vdk_opts_get(e, "format");
    int r = 0;
    if (!s->crypt_method)
        r = vdk_error_setf(errp, EINVAL, "Can't amend encryption options - encryption "
                           "not present");
    else if (fmt && strcmp(fmt, "luks") != 0)
        r = vdk_error_setf(errp, EINVAL, "Changing the encryption format is not "
                           "supported");
    else if (!s->luks || s->crypto_locked)
        r = vdk_error_setf(errp, EINVAL, "the image must be opened with its "
                           "encrypt.key-secret to change keyslots");
    if (r == 0)
        r = vdk_luks_amend(s->luks, e, errp);
    if (r == 0)
        r = vdk_opts_check_unused(e, "qcow2 encryption (encrypt.*)", errp);
    if (r == 0 && (r = vdk_flush(n->file)) < 0)
        vdk_error_setf_errno(errp, r, "could not flush the encryption header");
    vdk_opts_free(e);
    return r;
}

static int crypt_check(struct vdk_node *n, uint64_t host, uint64_t len)
{
    struct qcow2_state *s = n->opaque;
    if (!s->luks || s->crypto_locked)
        return -EACCES;
    uint32_t ss = vdk_luks_sector_size(s->luks);
    return ((host | len) & (ss - 1)) ? -EIO : 0;
}

int qcow2_crypto_decrypt(struct vdk_node *n, uint64_t host, void *buf, uint64_t len)
{
    struct qcow2_state *s = n->opaque;
    int r = crypt_check(n, host, len);
    return r < 0 ? r : vdk_luks_decrypt(s->luks, host / 512, buf, buf, len);
}

int qcow2_crypto_encrypt(struct vdk_node *n, uint64_t host, void *buf, uint64_t len)
{
    struct qcow2_state *s = n->opaque;
    int r = crypt_check(n, host, len);
    return r < 0 ? r : vdk_luks_encrypt(s->luks, host / 512, buf, buf, len);
}

int qcow2_crypto_pwrite(struct vdk_node *n, uint64_t host, const void *buf, uint64_t len)
{
    struct qcow2_state *s = n->opaque;
    const uint8_t *in = buf;
    int r = crypt_check(n, host, len);
    if (r < 0)
        return r;
    uint64_t chunk = vdk_min_u64(len, QCOW2_CRYPTO_BOUNCE);
    uint8_t *b = vdk_blk_alloc(chunk);
    if (!b)
        return -ENOMEM;
    while (r == 0 && len) {
        uint64_t c = vdk_min_u64(len, chunk);
        r = vdk_luks_encrypt(s->luks, host / 512, in, b, c);
        if (r == 0)
            r = vdk_pwrite(s->data, b, c, host, 0);
        host += c;
        in += c;
        len -= c;
    }
    vdk_blk_free(b);
    return r;
}

int qcow2_crypto_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct qcow2_state *s = n->opaque;
    int r = qcow2_block_status(n, offset, bytes, pnum, map, file);
    /* qemu reports no host offset for encrypted data: it is not the guest's. */
    if (r > 0 && s->crypt_method)
        r &= ~(VDK_BS_OFFSET_VALID | VDK_BS_PLAIN);
    return r;
}
