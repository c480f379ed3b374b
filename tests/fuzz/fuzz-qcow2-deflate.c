/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the qcow2 deflate encoder (formats/qcow2/qcow2-deflate.c)
 * against zlib.  The input, zero-padded to a cluster size its first byte
 * picks (512 B to 64 KiB), must compress to exactly the bytes zlib's
 * deflate() gives with QEMU's parameters (level 6, 4 KiB window, memLevel
 * 9), with the same "does not fit" answer for an output limit of one byte
 * under the cluster size, and must inflate back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/qcow2/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int64_t zlib_deflate(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    z_stream z = { 0 };
    if (deflateInit2(&z, 6, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    int64_t len = r == Z_STREAM_END ? (int64_t)(cap - z.avail_out) : -1;
    deflateEnd(&z);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct qcow2_deflate *enc;
    if (!enc && !(enc = qcow2_deflate_new()))
        abort();
    if (size < 1)
        return 0;
    size_t cs = (size_t)512 << (data[0] % 8); /* 512 B .. 64 KiB */
    data++;
    size--;
    uint8_t *in = calloc(1, cs), *a = malloc(cs), *b = malloc(cs), *back = malloc(cs);
    if (!in || !a || !b || !back)
        abort();
    memcpy(in, data, size < cs ? size : cs);
    int64_t la = zlib_deflate(in, cs, a, cs - 1);
    int64_t lb = qcow2_deflate(enc, in, cs, b, cs - 1);
    if ((la < 0) != (lb < 0) || (la >= 0 && (la != lb || memcmp(a, b, (size_t)la) != 0)))
        abort();
    if (lb >= 0) {
        z_stream z = { 0 };
        if (inflateInit2(&z, -12) != Z_OK)
            abort();
        z.next_in = b;
        z.avail_in = (uInt)lb;
        z.next_out = back;
        z.avail_out = (uInt)cs;
        int r = inflate(&z, Z_FINISH);
        inflateEnd(&z);
        if (r != Z_STREAM_END || memcmp(back, in, cs) != 0)
            abort();
    }
    free(in);
    free(a);
    free(b);
    free(back);
    return 0;
}
