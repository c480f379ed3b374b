/* SPDX-License-Identifier: MIT */
/*
 * qcow2: cluster compression.  zlib clusters are raw deflate streams
 * (window 4 KiB, no zlib header), zstd clusters are zstd frames; both are
 * followed by padding up to the next 512-byte boundary, which the
 * decompressors ignore by stopping once the cluster is full.
 */
#include <errno.h>
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

int64_t qcow2_compress(uint8_t type, const uint8_t *src, size_t slen, uint8_t *dst,
                       size_t dcap)
{
    if (type == QCOW2_COMP_ZSTD) {
        size_t z = ZSTD_compress(dst, dcap, src, slen, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(z))
            return ZSTD_getErrorCode(z) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EIO;
        return (int64_t)z;
    }
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)slen;
    z.next_out = dst;
    z.avail_out = (uInt)dcap;
    int zr = deflate(&z, Z_FINISH);
    int64_t r = zr == Z_STREAM_END ? (int64_t)(dcap - z.avail_out) : -ENOSPC;
    deflateEnd(&z);
    return r;
}
