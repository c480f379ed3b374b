/* SPDX-License-Identifier: MIT */
/*
 * The LUKS anti-forensic information splitter.  The key is spread over
 * `stripes` blocks so that destroying any one of them destroys the key.
 *
 * Merge: d = 0; for each block s_i but the last: d = H(d ^ s_i); then
 * key = d ^ s_last.  H ("diffuse") hashes the block in digest-sized
 * pieces, piece j being replaced by hash(be32(j) || piece j), the last
 * piece truncated.  Split draws the first stripes-1 blocks at random and
 * solves for the last.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "block/crypto/crypto.h"

static int diffuse(enum vdk_hash h, uint8_t *buf, size_t len)
{
    const EVP_MD *md = vdk_hash_md(h);
    size_t hl = vdk_hash_len(h);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t dig[VDK_HASH_MAX_LEN];
    int r = 0;
    if (!md || !ctx) {
        EVP_MD_CTX_free(ctx);
        return -ENOMEM;
    }
    for (size_t off = 0, j = 0; off < len; off += hl, j++) {
        size_t piece = len - off < hl ? len - off : hl;
        uint8_t iv[4] = { (uint8_t)(j >> 24), (uint8_t)(j >> 16), (uint8_t)(j >> 8),
                          (uint8_t)j };
        if (EVP_DigestInit_ex(ctx, md, NULL) != 1 || EVP_DigestUpdate(ctx, iv, 4) != 1 ||
            EVP_DigestUpdate(ctx, buf + off, piece) != 1 ||
            EVP_DigestFinal_ex(ctx, dig, NULL) != 1) {
            r = -EIO;
            break;
        }
        memcpy(buf + off, dig, piece);
    }
    OPENSSL_cleanse(dig, sizeof(dig));
    EVP_MD_CTX_free(ctx);
    return r;
}

static void xor_into(uint8_t *d, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        d[i] ^= s[i];
}

int vdk_af_split(enum vdk_hash h, const uint8_t *key, size_t len, uint32_t stripes,
                 uint8_t *out)
{
    if (!stripes || !len || !vdk_hash_len(h))
        return -EINVAL;
    uint8_t *d = vdk_secure_alloc(len);
    int r = 0;
    if (!d)
        return -ENOMEM;
    for (uint32_t i = 0; i + 1 < stripes; i++) {
        if ((r = vdk_random_bytes(out + (size_t)i * len, len)) < 0)
            goto out;
        xor_into(d, out + (size_t)i * len, len);
        if ((r = diffuse(h, d, len)) < 0)
            goto out;
    }
    uint8_t *last = out + (size_t)(stripes - 1) * len;
    memcpy(last, d, len);
    xor_into(last, key, len);
out:
    vdk_secure_free(d, len);
    return r;
}

int vdk_af_merge(enum vdk_hash h, const uint8_t *in, size_t len, uint32_t stripes,
                 uint8_t *key)
{
    if (!stripes || !len || !vdk_hash_len(h))
        return -EINVAL;
    uint8_t *d = vdk_secure_alloc(len);
    int r = 0;
    if (!d)
        return -ENOMEM;
    for (uint32_t i = 0; i + 1 < stripes; i++) {
        xor_into(d, in + (size_t)i * len, len);
        if ((r = diffuse(h, d, len)) < 0)
            goto out;
    }
    memcpy(key, d, len);
    xor_into(key, in + (size_t)(stripes - 1) * len, len);
out:
    vdk_secure_free(d, len);
    return r;
}
