/* SPDX-License-Identifier: MIT */
/* Secure key buffers, random bytes and hash lookup for the crypto layer. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>

#include "block/crypto/crypto.h"

void *vdk_secure_alloc(size_t len)
{
    void *p = calloc(1, len ? len : 1);
    if (p)
        (void)mlock(p, len ? len : 1); /* best effort: RLIMIT_MEMLOCK may refuse */
    return p;
}

void vdk_secure_free(void *p, size_t len)
{
    if (!p)
        return;
    OPENSSL_cleanse(p, len ? len : 1);
    (void)munlock(p, len ? len : 1);
    free(p);
}

int vdk_random_bytes(void *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

static const struct {
    const char *name;
    size_t len;
} hashes[VDK_HASH__MAX] = {
    [VDK_HASH_SHA1] = { "sha1", 20 },
    [VDK_HASH_SHA224] = { "sha224", 28 },
    [VDK_HASH_SHA256] = { "sha256", 32 },
    [VDK_HASH_SHA384] = { "sha384", 48 },
    [VDK_HASH_SHA512] = { "sha512", 64 },
    [VDK_HASH_RIPEMD160] = { "ripemd160", 20 },
};

int vdk_hash_parse(const char *name)
{
    for (int i = 0; i < VDK_HASH__MAX; i++)
        if (strcasecmp(name, hashes[i].name) == 0)
            return i;
    return -EINVAL;
}

const char *vdk_hash_name(enum vdk_hash h)
{
    return (unsigned)h < VDK_HASH__MAX ? hashes[h].name : "?";
}

size_t vdk_hash_len(enum vdk_hash h)
{
    return (unsigned)h < VDK_HASH__MAX ? hashes[h].len : 0;
}

const EVP_MD *vdk_hash_md(enum vdk_hash h)
{
    return (unsigned)h < VDK_HASH__MAX ? EVP_get_digestbyname(hashes[h].name) : NULL;
}

int vdk_hash_digest(enum vdk_hash h, const void *data, size_t len, uint8_t *out)
{
    const EVP_MD *md = vdk_hash_md(h);
    unsigned int ol = 0;
    if (!md || EVP_Digest(data, len, out, &ol, md, NULL) != 1)
        return -EIO;
    return 0;
}
