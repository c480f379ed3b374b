/* SPDX-License-Identifier: MIT */
/*
 * Sector ciphers: AES in XTS, CBC or ECB mode with the dm-crypt IV
 * generators plain64, plain and essiv:HASH, all through OpenSSL EVP.
 *
 * Speed: OpenSSL's key schedule is the expensive part of EVP_CipherInit,
 * so each context is keyed once and per sector only the IV is reset
 * (EVP_CipherInit_ex with NULL cipher and key).  Contexts live in a pool
 * shared by the threads using the cipher: a request takes one set, does
 * all its sectors, and puts it back.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "block/crypto/crypto.h"

struct ctx_set {
    EVP_CIPHER_CTX *enc;
    EVP_CIPHER_CTX *dec;
    EVP_CIPHER_CTX *essiv; /* ECB encryptor of the IV (ESSIV only) */
    struct ctx_set *next;
};

struct vdk_cipher {
    struct vdk_cipher_spec spec;
    const EVP_CIPHER *evp;
    const EVP_CIPHER *essiv_evp;
    uint8_t *key;       /* secure, spec.key_len */
    uint8_t *essiv_key; /* secure, VDK_HASH_MAX_LEN */
    pthread_mutex_t lock;
    struct ctx_set *free_sets;
};

static const EVP_CIPHER *aes_evp(enum vdk_cipher_mode mode, uint32_t key_len)
{
    switch (mode) {
    case VDK_CIPHER_XTS:
        return key_len == 32 ? EVP_aes_128_xts() : key_len == 64 ? EVP_aes_256_xts() : NULL;
    case VDK_CIPHER_CBC:
        return key_len == 16 ? EVP_aes_128_cbc() : key_len == 24 ? EVP_aes_192_cbc()
             : key_len == 32 ? EVP_aes_256_cbc() : NULL;
    case VDK_CIPHER_ECB:
        return key_len == 16 ? EVP_aes_128_ecb() : key_len == 24 ? EVP_aes_192_ecb()
             : key_len == 32 ? EVP_aes_256_ecb() : NULL;
    }
    return NULL;
}

unsigned vdk_cipher_spec_aes_bits(const struct vdk_cipher_spec *s)
{
    return (s->mode == VDK_CIPHER_XTS ? s->key_len / 2 : s->key_len) * 8;
}

static int parse_mode(struct vdk_cipher_spec *s, const char *mode, uint32_t key_len,
                      struct vdk_error **errp)
{
    const char *dash = strchr(mode, '-');
    size_t ml = dash ? (size_t)(dash - mode) : strlen(mode);
    const char *iv = dash ? dash + 1 : "";
    memset(s, 0, sizeof(*s));
    s->key_len = key_len;
    if (ml == 3 && strncmp(mode, "xts", 3) == 0)
        s->mode = VDK_CIPHER_XTS;
    else if (ml == 3 && strncmp(mode, "cbc", 3) == 0)
        s->mode = VDK_CIPHER_CBC;
    else if (ml == 3 && strncmp(mode, "ecb", 3) == 0)
        s->mode = VDK_CIPHER_ECB;
    else
        return vdk_error_setf(errp, ENOTSUP, "unsupported cipher mode '%.32s'", mode);
    if (s->mode == VDK_CIPHER_ECB) {
        if (*iv)
            return vdk_error_setf(errp, ENOTSUP, "cipher mode ecb takes no IV generator");
        s->ivgen = VDK_IVGEN_NONE;
    } else if (strncmp(iv, "plain64", 7) == 0 && (!iv[7] || iv[7] == ':')) {
        s->ivgen = VDK_IVGEN_PLAIN64;
        iv += 7;
    } else if (strncmp(iv, "plain", 5) == 0 && (!iv[5] || iv[5] == ':')) {
        s->ivgen = VDK_IVGEN_PLAIN;
        iv += 5;
    } else if (strncmp(iv, "essiv:", 6) == 0) {
        int h = vdk_hash_parse(iv + 6);
        if (h < 0)
            return vdk_error_setf(errp, ENOTSUP, "unsupported ESSIV hash '%.32s'", iv + 6);
        size_t hl = vdk_hash_len((enum vdk_hash)h);
        if (hl != 16 && hl != 24 && hl != 32)
            return vdk_error_setf(errp, ENOTSUP, "ESSIV hash '%s' does not give an AES key",
                                  vdk_hash_name((enum vdk_hash)h));
        s->ivgen = VDK_IVGEN_ESSIV;
        s->ivgen_hash = (enum vdk_hash)h;
    } else {
        return vdk_error_setf(errp, ENOTSUP, "unsupported IV generator '%.32s'", iv);
    }
    if ((s->ivgen == VDK_IVGEN_PLAIN || s->ivgen == VDK_IVGEN_PLAIN64) && *iv) {
        int h = vdk_hash_parse(iv + 1);
        if (h < 0)
            return vdk_error_setf(errp, ENOTSUP, "unsupported IV generator hash '%.32s'",
                                  iv + 1);
        s->ivgen_hash = (enum vdk_hash)h;
        s->plain_hash = true;
    }
    if (!aes_evp(s->mode, key_len))
        return vdk_error_setf(errp, ENOTSUP, "key of %u bytes is invalid for aes-%.32s",
                              key_len, mode);
    return 0;
}

int vdk_cipher_spec_parse(struct vdk_cipher_spec *s, const char *cipher, const char *mode,
                          uint32_t key_len, struct vdk_error **errp)
{
    if (strcmp(cipher, "aes") != 0)
        return vdk_error_setf(errp, ENOTSUP, "unsupported cipher '%.32s' (only aes)", cipher);
    return parse_mode(s, mode, key_len, errp);
}

int vdk_cipher_spec_parse2(struct vdk_cipher_spec *s, const char *name, uint32_t key_len,
                           struct vdk_error **errp)
{
    if (strncmp(name, "aes-", 4) != 0)
        return vdk_error_setf(errp, ENOTSUP, "unsupported cipher '%.40s' (only aes)", name);
    return parse_mode(s, name + 4, key_len, errp);
}

void vdk_cipher_spec_mode_name(const struct vdk_cipher_spec *s, char *buf, size_t size)
{
    static const char *const modes[] = { "xts", "cbc", "ecb" };
    switch (s->ivgen) {
    case VDK_IVGEN_PLAIN64:
    case VDK_IVGEN_PLAIN:
        snprintf(buf, size, "%s-%s%s%s", modes[s->mode],
                 s->ivgen == VDK_IVGEN_PLAIN ? "plain" : "plain64", s->plain_hash ? ":" : "",
                 s->plain_hash ? vdk_hash_name(s->ivgen_hash) : "");
        break;
    case VDK_IVGEN_ESSIV:
        snprintf(buf, size, "%s-essiv:%s", modes[s->mode], vdk_hash_name(s->ivgen_hash));
        break;
    case VDK_IVGEN_NONE:
        snprintf(buf, size, "%s", modes[s->mode]);
        break;
    }
}

static void set_free(struct ctx_set *cs)
{
    if (!cs)
        return;
    EVP_CIPHER_CTX_free(cs->enc);
    EVP_CIPHER_CTX_free(cs->dec);
    EVP_CIPHER_CTX_free(cs->essiv);
    free(cs);
}

static struct ctx_set *set_new(struct vdk_cipher *c)
{
    struct ctx_set *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    cs->enc = EVP_CIPHER_CTX_new();
    cs->dec = EVP_CIPHER_CTX_new();
    if (!cs->enc || !cs->dec ||
        EVP_CipherInit_ex(cs->enc, c->evp, NULL, c->key, NULL, 1) != 1 ||
        EVP_CipherInit_ex(cs->dec, c->evp, NULL, c->key, NULL, 0) != 1)
        goto fail;
    /* CBC/ECB decryption must not hold back a last block for padding.
       XTS has no padding; setting the flag there would make OpenSSL
       re-send it to the provider on every IV change. */
    if (c->spec.mode != VDK_CIPHER_XTS &&
        (EVP_CIPHER_CTX_set_padding(cs->enc, 0) != 1 ||
         EVP_CIPHER_CTX_set_padding(cs->dec, 0) != 1))
        goto fail;
    if (c->essiv_evp) {
        cs->essiv = EVP_CIPHER_CTX_new();
        if (!cs->essiv ||
            EVP_CipherInit_ex(cs->essiv, c->essiv_evp, NULL, c->essiv_key, NULL, 1) != 1 ||
            EVP_CIPHER_CTX_set_padding(cs->essiv, 0) != 1)
            goto fail;
    }
    return cs;
fail:
    set_free(cs);
    return NULL;
}

static struct ctx_set *set_get(struct vdk_cipher *c)
{
    pthread_mutex_lock(&c->lock);
    struct ctx_set *cs = c->free_sets;
    if (cs)
        c->free_sets = cs->next;
    pthread_mutex_unlock(&c->lock);
    return cs ? cs : set_new(c);
}

static void set_put(struct vdk_cipher *c, struct ctx_set *cs)
{
    pthread_mutex_lock(&c->lock);
    cs->next = c->free_sets;
    c->free_sets = cs;
    pthread_mutex_unlock(&c->lock);
}

void vdk_cipher_free(struct vdk_cipher *c)
{
    if (!c)
        return;
    while (c->free_sets) {
        struct ctx_set *cs = c->free_sets;
        c->free_sets = cs->next;
        set_free(cs);
    }
    vdk_secure_free(c->key, c->spec.key_len);
    vdk_secure_free(c->essiv_key, VDK_HASH_MAX_LEN);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int vdk_cipher_new(struct vdk_cipher **out, const struct vdk_cipher_spec *spec,
                   const uint8_t *key, struct vdk_error **errp)
{
    struct vdk_cipher *c = calloc(1, sizeof(*c));
    if (!c)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    c->spec = *spec;
    pthread_mutex_init(&c->lock, NULL);
    c->evp = aes_evp(spec->mode, spec->key_len);
    c->key = vdk_secure_alloc(spec->key_len);
    c->essiv_key = vdk_secure_alloc(VDK_HASH_MAX_LEN);
    if (!c->key || !c->essiv_key) {
        vdk_cipher_free(c);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    if (!c->evp) {
        vdk_cipher_free(c);
        return vdk_error_setf(errp, ENOTSUP, "unsupported cipher key length %u",
                              spec->key_len);
    }
    memcpy(c->key, key, spec->key_len);
    if (spec->mode == VDK_CIPHER_XTS &&
        memcmp(key, key + spec->key_len / 2, spec->key_len / 2) == 0) {
        /* OpenSSL refuses such keys (they would make XTS insecure). */
        vdk_cipher_free(c);
        return vdk_error_setf(errp, EINVAL, "invalid XTS key: both halves are equal");
    }
    if (spec->ivgen == VDK_IVGEN_ESSIV) {
        size_t hl = vdk_hash_len(spec->ivgen_hash);
        c->essiv_evp = aes_evp(VDK_CIPHER_ECB, (uint32_t)hl);
        if (!c->essiv_evp ||
            vdk_hash_digest(spec->ivgen_hash, key, spec->key_len, c->essiv_key) < 0) {
            vdk_cipher_free(c);
            return vdk_error_setf(errp, EIO, "cannot set up the ESSIV generator");
        }
    }
    /* Key one context set now so that bad keys fail here, not on I/O. */
    struct ctx_set *cs = set_new(c);
    if (!cs) {
        vdk_cipher_free(c);
        return vdk_error_setf(errp, EINVAL, "the cipher library rejected the key");
    }
    set_put(c, cs);
    *out = c;
    return 0;
}

static int make_iv(struct vdk_cipher *c, struct ctx_set *cs, uint64_t sector, uint8_t iv[16])
{
    memset(iv, 0, 16);
    switch (c->spec.ivgen) {
    case VDK_IVGEN_NONE:
        return 0;
    case VDK_IVGEN_PLAIN:
        sector &= 0xffffffffu;
        /* fall through */
    case VDK_IVGEN_PLAIN64:
    case VDK_IVGEN_ESSIV:
        for (int i = 0; i < 8; i++)
            iv[i] = (uint8_t)(sector >> (8 * i));
        break;
    }
    if (c->spec.ivgen == VDK_IVGEN_ESSIV) {
        int outl = 0;
        if (EVP_EncryptUpdate(cs->essiv, iv, &outl, iv, 16) != 1 || outl != 16)
            return -EIO;
    }
    return 0;
}

static int crypt_sectors(struct vdk_cipher *c, bool enc, uint64_t iv_sector,
                         uint32_t sector_size, const void *in, void *out, size_t len)
{
    if (sector_size < 16 || sector_size % 16 || len % sector_size)
        return -EINVAL;
    struct ctx_set *cs = set_get(c);
    if (!cs)
        return -ENOMEM;
    EVP_CIPHER_CTX *ctx = enc ? cs->enc : cs->dec;
    const uint8_t *src = in;
    uint8_t *dst = out;
    uint64_t step = sector_size / 512 ? sector_size / 512 : 1;
    int r = 0;
    for (size_t done = 0; done < len; done += sector_size, iv_sector += step) {
        uint8_t iv[16];
        int outl = 0;
        if ((r = make_iv(c, cs, iv_sector, iv)) < 0)
            break;
        /* One call per sector: XTS treats each call as one data unit. */
        if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL,
                              c->spec.ivgen == VDK_IVGEN_NONE ? NULL : iv, -1) != 1 ||
            EVP_CipherUpdate(ctx, dst + done, &outl, src + done, (int)sector_size) != 1 ||
            (uint32_t)outl != sector_size) {
            r = -EIO;
            break;
        }
    }
    set_put(c, cs);
    return r;
}

int vdk_cipher_encrypt(struct vdk_cipher *c, uint64_t iv_sector, uint32_t sector_size,
                       const void *in, void *out, size_t len)
{
    return crypt_sectors(c, true, iv_sector, sector_size, in, out, len);
}

int vdk_cipher_decrypt(struct vdk_cipher *c, uint64_t iv_sector, uint32_t sector_size,
                       const void *in, void *out, size_t len)
{
    return crypt_sectors(c, false, iv_sector, sector_size, in, out, len);
}
