/* SPDX-License-Identifier: MIT */
/*
 * Keyslots and the volume key digest, common to LUKS1 and LUKS2.
 *
 * A keyslot holds the volume key split by the AF splitter into `stripes`
 * copies' worth of material, encrypted with a key derived from the
 * passphrase.  Unlocking derives that key, decrypts the area (512-byte
 * sectors, IVs from 0), merges the stripes and checks the result against
 * the PBKDF2 digest of the volume key.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks/luks.h"

uint64_t luks_avail(struct vdk_luks *l)
{
    if (l->limit)
        return l->limit;
    int64_t len = vdk_get_length(l->file);
    return len > 0 && (uint64_t)len > l->base ? (uint64_t)len - l->base : 0;
}

int luks_read(struct vdk_luks *l, uint64_t off, void *buf, size_t len,
              struct vdk_error **errp)
{
    uint64_t avail = luks_avail(l);
    if (off > avail || len > avail - off)
        return vdk_error_setf(errp, EINVAL, "LUKS header reaches beyond the end of the file");
    int r = vdk_pread(l->file, buf, len, l->base + off, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the LUKS header");
    return 0;
}

int luks_write(struct vdk_luks *l, uint64_t off, const void *buf, size_t len,
               struct vdk_error **errp)
{
    if (l->limit && (off > l->limit || len > l->limit - off))
        return vdk_error_setf(errp, EINVAL, "LUKS header write beyond its area");
    int r = vdk_pwrite(l->file, buf, len, l->base + off, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot write the LUKS header");
    return 0;
}

int luks_b64_decode(const char *in, uint8_t *out, size_t max)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 || n / 4 * 3 > max + 2)
        return -EINVAL;
    uint8_t *tmp = malloc(n / 4 * 3);
    if (!tmp)
        return -ENOMEM;
    int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
    if (got >= 0) {
        /* EVP_DecodeBlock counts the padding as zero bytes. */
        if (in[n - 1] == '=')
            got--;
        if (in[n - 2] == '=')
            got--;
        if ((size_t)got > max)
            got = -EINVAL;
        else
            memcpy(out, tmp, (size_t)got);
    } else {
        got = -EINVAL;
    }
    OPENSSL_cleanse(tmp, n / 4 * 3);
    free(tmp);
    return got;
}

char *luks_b64_encode(const uint8_t *in, size_t len)
{
    char *s = malloc(4 * ((len + 2) / 3) + 1);
    if (s)
        EVP_EncodeBlock((unsigned char *)s, in, (int)len);
    return s;
}

bool luks_digest_check(struct vdk_luks *l, const uint8_t *key)
{
    uint8_t d[VDK_HASH_MAX_LEN];
    const struct luks_digest *g = &l->digest;
    if (g->digest_len == 0 || g->digest_len > sizeof(d))
        return false;
    bool ok = vdk_pbkdf2(g->hash, key, l->spec.key_len, g->salt, g->salt_len,
                         g->iterations, d, g->digest_len) == 0 &&
              CRYPTO_memcmp(d, g->digest, g->digest_len) == 0;
    OPENSSL_cleanse(d, sizeof(d));
    return ok;
}

int luks_digest_make(struct vdk_luks *l, uint32_t iter_time_ms, struct vdk_error **errp)
{
    struct luks_digest *g = &l->digest;
    g->hash = l->hash;
    g->salt_len = LUKS_SALT_LEN;
    g->digest_len = l->version == 1 ? LUKS1_DIGEST_LEN : (uint32_t)vdk_hash_len(l->hash);
    /* An eighth of the keyslot time, as QEMU does, but never below 1000. */
    uint64_t it = vdk_pbkdf2_iters_per_sec(l->hash, g->digest_len) * iter_time_ms / 8000u;
    g->iterations = (uint32_t)(it < VDK_PBKDF2_MIN_ITERS ? VDK_PBKDF2_MIN_ITERS
                               : it > VDK_PBKDF2_MAX_ITERS ? VDK_PBKDF2_MAX_ITERS : it);
    if (vdk_random_bytes(g->salt, g->salt_len) < 0 ||
        vdk_pbkdf2(g->hash, l->key, l->spec.key_len, g->salt, g->salt_len, g->iterations,
                   g->digest, g->digest_len) < 0)
        return vdk_error_setf(errp, EIO, "cannot compute the volume key digest");
    return 0;
}

static int too_costly(struct vdk_luks *l, const char *field, uint64_t v, uint64_t max,
                      const char *opt, struct vdk_error **errp)
{
    return vdk_error_setf(errp, E2BIG, "LUKS%d header: %s %" PRIu64 " is above the limit "
                          "%" PRIu64 " (raise it with the open option %s%s)", l->version,
                          field, v, max, l->lim.prefix ? l->lim.prefix : "", opt);
}

/* Refuse, before deriving anything, costs above l->lim: an untrusted
   header must not keep us busy for minutes or take all the memory. */
static int check_costs(struct vdk_luks *l, int slot, struct vdk_error **errp)
{
    const struct luks_keyslot *ks = &l->slots[slot];
    char f[64];
    if (l->digest.iterations > l->lim.iterations)
        return too_costly(l, l->version == 1 ? "mkDigestIterations" : "digest iterations",
                          l->digest.iterations, l->lim.iterations, "max-pbkdf-iterations",
                          errp);
    if (ks->kdf.type == VDK_KDF_PBKDF2) {
        snprintf(f, sizeof(f), l->version == 1 ? "keyslot %d passwordIterations"
                                               : "keyslot %d kdf iterations", slot);
        if (ks->kdf.iterations > l->lim.iterations)
            return too_costly(l, f, ks->kdf.iterations, l->lim.iterations,
                              "max-pbkdf-iterations", errp);
        return 0;
    }
    snprintf(f, sizeof(f), "keyslot %d kdf memory (KiB)", slot);
    if (ks->kdf.memory_kib > l->lim.memory_kib)
        return too_costly(l, f, ks->kdf.memory_kib, l->lim.memory_kib, "max-pbkdf-memory",
                          errp);
    /* time x memory in GiB passes, rounded up */
    uint64_t work = ((uint64_t)ks->kdf.iterations * ks->kdf.memory_kib + (1u << 20) - 1) >> 20;
    snprintf(f, sizeof(f), "keyslot %d kdf time x memory (GiB passes)", slot);
    if (work > l->lim.work)
        return too_costly(l, f, work, l->lim.work, "max-pbkdf-work", errp);
    return 0;
}

int luks_keyslot_unlock(struct vdk_luks *l, int slot, const char *pass, size_t passlen,
                        uint8_t *key, struct vdk_error **errp)
{
    int cr = check_costs(l, slot, errp);
    if (cr < 0)
        return cr;
    struct luks_keyslot *ks = &l->slots[slot];
    size_t klen = l->spec.key_len, aklen = ks->area_cipher.key_len;
    size_t mlen = klen * ks->stripes, alen = vdk_align_up(mlen, 512);
    uint8_t *dk = vdk_secure_alloc(aklen), *mat = vdk_secure_alloc(alen);
    struct vdk_cipher *c = NULL;
    int r;
    if (!dk || !mat) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    r = vdk_kdf_derive(&ks->kdf, pass, passlen, ks->salt, ks->salt_len, dk, aklen);
    if (r < 0) {
        r = vdk_error_setf(errp, -r, "keyslot %d: key derivation failed", slot);
        goto out;
    }
    if ((r = luks_read(l, ks->area_offset, mat, alen, errp)) < 0)
        goto out;
    if ((r = vdk_cipher_new(&c, &ks->area_cipher, dk, errp)) < 0)
        goto out;
    if ((r = vdk_cipher_decrypt(c, 0, 512, mat, mat, alen)) < 0 ||
        (r = vdk_af_merge(ks->af_hash, mat, klen, ks->stripes, key)) < 0) {
        r = vdk_error_setf(errp, -r, "keyslot %d: cannot decrypt the key material", slot);
        goto out;
    }
    r = luks_digest_check(l, key) ? 0 : -EPERM;
out:
    vdk_cipher_free(c);
    vdk_secure_free(dk, aklen);
    vdk_secure_free(mat, alen);
    return r;
}

int luks_unlock(struct vdk_luks *l, const char *pass, size_t passlen,
                struct vdk_error **errp)
{
    uint8_t *key = vdk_secure_alloc(l->spec.key_len);
    int r = -EPERM;
    if (!key)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    /* LUKS2 priority 2 ("prefer") first, then normal; 0 ("ignore") is
       still tried last so that an explicit passphrase opens it. */
    for (int pass_no = 0; pass_no < 3 && r == -EPERM; pass_no++) {
        for (int i = 0; i < l->nslots; i++) {
            const struct luks_keyslot *ks = &l->slots[i];
            int prio = ks->priority < 0 ? 1 : ks->priority;
            if (!ks->active || prio != 2 - pass_no)
                continue;
            struct vdk_error *e = NULL;
            r = luks_keyslot_unlock(l, i, pass, passlen, key, &e);
            if (r == 0)
                break;
            if (r != -EPERM) {
                vdk_error_propagate(errp, e);
                goto out;
            }
            vdk_error_free(e);
        }
    }
    if (r == -EPERM) {
        r = vdk_error_setf(errp, EPERM, "invalid passphrase");
        goto out;
    }
    if ((r = vdk_cipher_new(&l->cipher, &l->spec, key, errp)) < 0)
        goto out;
    l->key = key;
    key = NULL;
out:
    vdk_secure_free(key, l->spec.key_len);
    return r;
}

/* LUKS2: first 4 KiB-aligned gap in the keyslots area that fits size. */
static int luks2_place(struct vdk_luks *l, int slot, uint64_t size, uint64_t *off)
{
    uint64_t start = 2 * l->hdr_size, end = start + l->keyslots_size;
    uint64_t cand = start;
again:
    for (int i = 0; i < l->nslots; i++) {
        const struct luks_keyslot *o = &l->slots[i];
        if (i == slot || !o->active)
            continue;
        if (cand < o->area_offset + o->area_size && o->area_offset < cand + size) {
            cand = vdk_align_up(o->area_offset + o->area_size, 4096);
            goto again;
        }
    }
    if (cand + size > end)
        return -ENOSPC;
    *off = cand;
    return 0;
}

int luks_keyslot_store(struct vdk_luks *l, int slot, const char *pass, size_t passlen,
                       const struct vdk_kdf *kdf, uint32_t iter_time_ms, uint32_t forced,
                       struct vdk_error **errp)
{
    struct luks_keyslot *ks = &l->slots[slot];
    size_t klen = l->spec.key_len;
    size_t mlen = klen * LUKS_STRIPES, alen = vdk_align_up(mlen, 512);
    uint8_t *dk = NULL, *mat = NULL;
    struct vdk_cipher *c = NULL;
    int r;
    struct luks_keyslot n = *ks;
    n.kdf = *kdf;
    n.stripes = LUKS_STRIPES;
    n.af_hash = l->hash;
    n.area_cipher = l->spec;
    n.salt_len = LUKS_SALT_LEN;
    if (l->version == 2) {
        n.area_size = vdk_align_up(mlen, 4096);
        if (luks2_place(l, slot, n.area_size, &n.area_offset) < 0)
            return vdk_error_setf(errp, ENOSPC, "no room for another keyslot in the LUKS2 "
                                  "keyslots area");
    } else {
        /* LUKS1 keeps each slot's area in the header, also for inactive
           slots: check it before writing there (the image is untrusted). */
        n.area_size = alen;
        bool bad = n.area_offset < 4096 || n.area_offset > l->payload_offset ||
                   alen > l->payload_offset - n.area_offset;
        for (int i = 0; i < l->nslots && !bad; i++) {
            const struct luks_keyslot *o = &l->slots[i];
            bad = i != slot && o->active && n.area_offset < o->area_offset + o->area_size &&
                  o->area_offset < n.area_offset + alen;
        }
        if (bad)
            return vdk_error_setf(errp, EINVAL, "keyslot %d has no usable key material area",
                                  slot);
    }
    if (forced)
        n.kdf.iterations = forced;
    else if ((r = vdk_kdf_benchmark(&n.kdf, iter_time_ms, klen, errp)) < 0)
        return r;
    dk = vdk_secure_alloc(klen);
    mat = vdk_secure_alloc(alen);
    if (!dk || !mat) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    if (vdk_random_bytes(n.salt, n.salt_len) < 0 ||
        (r = vdk_kdf_derive(&n.kdf, pass, passlen, n.salt, n.salt_len, dk, klen)) < 0 ||
        (r = vdk_af_split(n.af_hash, l->key, klen, n.stripes, mat)) < 0) {
        r = vdk_error_setf(errp, EIO, "keyslot %d: key derivation failed", slot);
        goto out;
    }
    /* A derived XTS key with equal halves is astronomically unlikely, but
       OpenSSL would refuse it: report it rather than crash. */
    if ((r = vdk_cipher_new(&c, &n.area_cipher, dk, errp)) < 0)
        goto out;
    if ((r = vdk_cipher_encrypt(c, 0, 512, mat, mat, alen)) < 0) {
        r = vdk_error_setf(errp, -r, "keyslot %d: encryption failed", slot);
        goto out;
    }
    if ((r = luks_write(l, n.area_offset, mat, alen, errp)) < 0)
        goto out;
    n.active = true;
    *ks = n;
out:
    vdk_cipher_free(c);
    vdk_secure_free(dk, klen);
    vdk_secure_free(mat, alen);
    return r;
}
