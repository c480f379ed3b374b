/* SPDX-License-Identifier: MIT */
/* Secure key buffers, random bytes and hash lookup for the crypto layer. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/crypto/crypto.h"

/*
 * Key material lives in its own anonymous pages: locked (best effort:
 * RLIMIT_MEMLOCK may refuse), left out of core dumps, never shared with
 * other heap data, wiped and unmapped when freed.  The mapping's size sits
 * in a header before the returned pointer.
 */
#define SECURE_HDR 16u

void *vdk_secure_alloc(size_t len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    if (len > SIZE_MAX - SECURE_HDR - pg)
        return NULL;
    size_t map = (len + SECURE_HDR + pg - 1) / pg * pg;
    uint8_t *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    (void)mlock(m, map);
    (void)madvise(m, map, MADV_DONTDUMP);
    memcpy(m, &map, sizeof(map));
    return m + SECURE_HDR;
}

void vdk_secure_free(void *p, size_t len)
{
    if (!p)
        return;
    uint8_t *m = (uint8_t *)p - SECURE_HDR;
    size_t map;
    memcpy(&map, m, sizeof(map));
    (void)len;
    OPENSSL_cleanse(m, map);
    (void)munlock(m, map);
    munmap(m, map);
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
