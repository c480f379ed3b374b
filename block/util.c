/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the block layer and drivers. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    if (rel[0] == '/' || is_uri(rel) || vdk_filename_is_remote(rel) || !base_filename ||
        is_uri(base_filename))
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

void *vdk_buffer_alloc(size_t size)
{
    void *p = NULL;
    return posix_memalign(&p, 4096, size ? size : 1) == 0 ? p : NULL;
}

void vdk_buffer_free(void *p)
{
    free(p);
}

void *vdk_blk_alloc(size_t size)
{
    void *p = vdk_buffer_alloc(size);
    if (p)
        memset(p, 0, size);
    return p;
}

void vdk_blk_free(void *p)
{
    vdk_buffer_free(p);
}

ssize_t vdk_read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, (uint8_t *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

int vdk_read_file(const char *path, const char *what, size_t max, uint8_t **data,
                  size_t *len, struct vdk_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "cannot open %s '%s'", what, path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vdk_error_setf(errp, EINVAL, "%s '%s' is not a regular file", what, path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return vdk_error_setf(errp, EFBIG, "%s '%s' is too big (%lld bytes, at most %llu)",
                              what, path, (long long)st.st_size, (unsigned long long)max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    ssize_t got = p ? vdk_read_full(fd, p, n) : -ENOMEM;
    close(fd);
    if (got < 0 || (size_t)got != n) {
        free(p);
        return vdk_error_setf_errno(errp, got < 0 ? (int)-got : EIO, "cannot read %s '%s'",
                                    what, path);
    }
    *data = p;
    *len = n;
    return 0;
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
