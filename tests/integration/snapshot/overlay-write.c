/* SPDX-License-Identifier: MIT */
/*
 * overlay-write IMAGE FORMAT: open IMAGE through the throwaway overlay
 * (VDK_O_SNAPSHOT), write patterns (aligned, unaligned, across clusters,
 * zeroes, past a cluster boundary at the end), read them back, flush and
 * close.  Exit 0 when every read showed the writes; the caller checks the
 * image itself did not change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/block.h"
#include "vdk/error.h"

static int fail(const char *what)
{
    fprintf(stderr, "overlay-write: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fail("usage: overlay-write IMAGE FORMAT");
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    if (vdk_open(&n, argv[1], argv[2], NULL, VDK_O_RDWR | VDK_O_SNAPSHOT, &err) < 0) {
        fprintf(stderr, "overlay-write: %s\n", vdk_error_msg(err));
        vdk_error_free(err);
        return 1;
    }
    int64_t len = vdk_get_length(n);
    if (len < (4 << 20))
        return fail("image smaller than 4 MiB");
    static const struct { uint64_t off, len; } w[] = {
        { 0, 65536 }, { 100, 3000 }, { 65536 - 7, 20 }, { 1 << 20, 300000 },
    };
    uint8_t *buf = malloc(1 << 20), *rd = malloc(1 << 20);
    if (!buf || !rd)
        return fail("out of memory");
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        memset(buf, 0xa0 + (int)i, w[i].len);
        if (vdk_pwrite(n, buf, w[i].len, w[i].off, 0) < 0 ||
            vdk_pread(n, rd, w[i].len, w[i].off, 0) < 0 || memcmp(buf, rd, w[i].len))
            return fail("a write did not read back");
    }
    uint64_t end = (uint64_t)len - 5000;
    memset(buf, 0x5c, 5000);
    if (vdk_pwrite(n, buf, 5000, end, 0) < 0 ||
        vdk_pwrite_zeroes(n, 2 << 20, 131072, 0) < 0 ||
        vdk_pread(n, rd, 131072, 2 << 20, 0) < 0 || !vdk_buffer_is_zero(rd, 131072) ||
        vdk_pread(n, rd, 5000, end, 0) < 0 || memcmp(buf, rd, 5000))
        return fail("zeroes or the tail did not read back");
    if (vdk_flush(n) < 0)
        return fail("flush failed");
    free(buf);
    free(rd);
    return vdk_close(n) < 0 ? fail("close failed") : 0;
}
