/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the block layer and drivers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/driver.h"

const char *vdk_version(void)
{
    return VDK_VERSION_STRING;
}

/*
 * Zero detection is on the convert hot path: check the head bytewise until
 * 8-byte aligned, then OR 64 bytes at a time so the compiler vectorises.
 */
bool vdk_buffer_is_zero(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    if (len < 64) {
        while (len--)
            if (*p++)
                return false;
        return true;
    }
    /* Data usually shows in its first bytes. */
    uint64_t w[2];
    memcpy(w, p, sizeof(w));
    if (w[0] | w[1])
        return false;
    /* The first 16 bytes are zero, so the buffer is zero exactly when each
       byte equals the one 16 bytes before it: libc's vectorised memcmp
       checks that at memory speed. */
    return memcmp(p, p + 16, len - 16) == 0;
}

static bool is_uri(const char *s)
{
    const char *c = strstr(s, "://");
    if (!c || c == s)
        return false;
    for (const char *p = s; p < c; p++)
        if (!(('a' <= *p && *p <= 'z') || *p == '+' || *p == '-' || *p == '.'))
            return false;
    return true;
}

char *vdk_path_combine(const char *base_filename, const char *rel)
{
    if (!rel)
        return NULL;
    if (rel[0] == '/' || is_uri(rel) || !base_filename || is_uri(base_filename))
        return strdup(rel);
    const char *slash = strrchr(base_filename, '/');
    if (!slash)
        return strdup(rel);
    size_t dl = (size_t)(slash - base_filename) + 1;
    char *r = malloc(dl + strlen(rel) + 1);
    if (!r)
        return NULL;
    memcpy(r, base_filename, dl);
    strcpy(r + dl, rel);
    return r;
}

void *vdk_blk_alloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, size ? size : 1) != 0)
        return NULL;
    memset(p, 0, size);
    return p;
}

void vdk_blk_free(void *p)
{
    free(p);
}

int vdk_node_read_backing(struct vdk_node *n, uint64_t offset, uint64_t bytes, uint8_t *buf)
{
    if (!n->backing) {
        memset(buf, 0, bytes);
        return 0;
    }
    int64_t blen = vdk_get_length(n->backing);
    if (blen < 0)
        return (int)blen;
    uint64_t have = offset < (uint64_t)blen ? vdk_min_u64(bytes, (uint64_t)blen - offset) : 0;
    if (have) {
        int r = vdk_pread(n->backing, buf, have, offset, 0);
        if (r < 0)
            return r;
    }
    memset(buf + have, 0, bytes - have);
    return 0;
}
