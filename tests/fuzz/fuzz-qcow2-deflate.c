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
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Structure-aware mutator: what the encoder decides is matches (3 to 258
 * bytes at a distance of 1 to 4096, its window) and whether the output
 * still fits under the cluster size.  So mutations copy earlier bytes at
 * distances and lengths around those edges (one inside, one outside),
 * write runs, overwrite spans with incompressible bytes (which moves the
 * output across the fit limit), bring the input to the cluster size or
 * one byte off it, and pick another cluster size.
 */
static bool deflate_step(struct fmut *m)
{
    static const size_t dists[] = { 1, 2, 3, 4, 255, 256, 257, 4095, 4096, 4097, 8192, 32768 };
    static const size_t lens[] = { 1, 2, 3, 4, 5, 257, 258, 259, 515, 516, 4096 };
    if (m->size < 2)
        return false;
    uint8_t *d = m->data + 1;
    size_t n = m->size - 1, cs = (size_t)512 << (m->data[0] % 8);
    size_t len = fm_rand(m, 2) ? lens[fm_rand(m, sizeof(lens) / sizeof(lens[0]))]
                               : 1 + fm_rand64(m) % n;
    switch (fm_rand(m, 8)) {
    case 0: /* another cluster size */
        m->data[0] = (uint8_t)((m->data[0] & 0xf8) | fm_rand(m, 8));
        return true;
    case 1: { /* the input at the cluster size, one under or one over */
        size_t want = cs + fm_rand(m, 3) - 1;
        if (want + 1 > m->max)
            return false;
        for (size_t k = n; k < want; k++)
            d[k] = n ? d[k % n] : 0;
        m->size = want + 1;
        return true;
    }
    case 2: case 3: case 4: { /* a match: earlier bytes copied forward */
        size_t dist = fm_rand(m, 3) ? dists[fm_rand(m, sizeof(dists) / sizeof(dists[0]))]
                                    : 1 + fm_rand64(m) % n;
        if (dist >= n || len > n - dist)
            return false;
        size_t at = dist + fm_rand64(m) % (n - dist - len + 1);
        for (size_t k = 0; k < len; k++) /* byte by byte: overlapping copies repeat */
            d[at + k] = d[at + k - dist];
        return true;
    }
    case 5: { /* a run of one byte */
        if (len > n)
            len = n;
        memset(d + fm_rand64(m) % (n - len + 1), fm_rand(m, 2) ? 0 : (int)fm_rand(m, 256), len);
        return true;
    }
    case 6: { /* incompressible bytes */
        if (len > n)
            len = n;
        size_t at = fm_rand64(m) % (n - len + 1);
        for (size_t k = 0; k < len; k++)
            d[at + k] = (uint8_t)fm_rand(m, 256);
        return true;
    }
    default: /* the tail cut: zero padding takes its place */
        m->size = 1 + fm_rand64(m) % n;
        return true;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, deflate_step, NULL);
}

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
