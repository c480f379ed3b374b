/* SPDX-License-Identifier: MIT */
/*
 * qcow2: cluster compression.  zlib clusters are raw deflate streams
 * (window 4 KiB, no zlib header), zstd clusters are zstd frames; both are
 * followed by padding up to the next 512-byte boundary, which the
 * decompressors ignore by stopping once the cluster is full.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "formats/qcow2/qcow2.h"

int qcow2_decompress(uint8_t type, const uint8_t *src, size_t slen, uint8_t *dst,
                     size_t dlen)
{
    if (type == QCOW2_COMP_ZSTD) {
        ZSTD_DCtx *d = ZSTD_createDCtx();
        if (!d)
            return -ENOMEM;
        ZSTD_inBuffer in = { src, slen, 0 };
        ZSTD_outBuffer out = { dst, dlen, 0 };
        int r = 0;
        /* Frames until the cluster is full; trailing padding is ignored. */
        while (out.pos < out.size) {
            size_t z = ZSTD_decompressStream(d, &out, &in);
            if (ZSTD_isError(z)) {
                r = -EIO;
                break;
            }
            if (in.pos == in.size && out.pos < out.size && z != 0) {
                r = -EIO; /* input ended inside a frame */
                break;
            }
            if (z == 0 && in.pos == in.size && out.pos < out.size) {
                r = -EIO; /* frames ended before the cluster did */
                break;
            }
        }
        ZSTD_freeDCtx(d);
        return r;
    }
    z_stream z = { 0 };
    if (inflateInit2(&z, -12) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)slen;
    z.next_out = dst;
    z.avail_out = (uInt)dlen;
    int zr = inflate(&z, Z_FINISH);
    int r = ((zr == Z_STREAM_END || zr == Z_BUF_ERROR) && z.avail_out == 0) ? 0 : -EIO;
    inflateEnd(&z);
    return r;
}

/*
 * Compression contexts are kept per thread and reset between clusters:
 * creating them costs more than compressing a cluster of easy data (zstd
 * clears its tables; the deflate encoder is 300 KiB).  A reset context
 * gives the same output as a new one.
 */
struct compress_ctx {
    ZSTD_CCtx *zstd;
    struct qcow2_deflate *zlib;
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
    struct compress_ctx *c = p;
    ZSTD_freeCCtx(c->zstd);
    qcow2_deflate_free(c->zlib);
    free(c);
}

static void ctx_key_create(void)
{
    pthread_key_create(&ctx_key, ctx_free);
}

static struct compress_ctx *ctx_get(void)
{
    pthread_once(&ctx_once, ctx_key_create);
    struct compress_ctx *c = pthread_getspecific(ctx_key);
    if (!c && (c = calloc(1, sizeof(*c))) && pthread_setspecific(ctx_key, c) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

int64_t qcow2_compress(uint8_t type, const uint8_t *src, size_t slen, uint8_t *dst,
                       size_t dcap)
{
    struct compress_ctx *c = ctx_get();
    if (!c)
        return -ENOMEM;
    if (type == QCOW2_COMP_ZSTD) {
        if (!c->zstd && !(c->zstd = ZSTD_createCCtx()))
            return -ENOMEM;
        size_t z = ZSTD_compressCCtx(c->zstd, dst, dcap, src, slen, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(z))
            return ZSTD_getErrorCode(z) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EIO;
        return (int64_t)z;
    }
    /* Raw deflate with a 4 KiB window (what QEMU's decompressor allows),
       byte for byte what QEMU's zlib call writes (qcow2-deflate.c). */
    if (!c->zlib && !(c->zlib = qcow2_deflate_new()))
        return -ENOMEM;
    return qcow2_deflate(c->zlib, src, slen, dst, dcap);
}
