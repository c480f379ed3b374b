/* SPDX-License-Identifier: MIT */
/*
 * Compressed grains, stream markers and the streamOptimized footer.
 *
 * A grain marker is { u64 lba; u32 size } followed by `size` bytes of
 * zlib data, the whole padded to a sector.  Metadata markers take a
 * sector: { u64 sectors; u32 size = 0; u32 type; 496 zero bytes } and are
 * followed by `sectors` sectors of GT, GD or footer.  The stream we write
 * (vmdk_stream_finish) is VMware's layout:
 *   header (gd_offset = GD_AT_END) | descriptor | grains ...
 *   | GT marker + GT (each non-empty table) | GD marker + GD
 *   | footer marker + footer header | end-of-stream marker
 * Grains are zlib streams at level 6, qemu's level.  With libdeflate
 * (VDK_HAVE_LIBDEFLATE) they are compressed and decompressed in one call
 * each, in under half of zlib's CPU time: the bytes differ from zlib's
 * (the size hardly), any inflater reads them.  Without it, zlib's
 * compress2 at the default level gives qemu's very bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef VDK_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "formats/vmdk/vmdk.h"

/*
 * Per-thread zlib streams and grain buffers: convert compresses in every
 * worker, and a fresh deflate state (256 KiB) and buffers per grain cost
 * more in page faults than the compression itself.  deflateReset keeps
 * compress2's parameters, so the output is the same bytes.
 */
struct zctx {
    z_stream def, inf;
    bool def_init, inf_init;
#ifdef VDK_HAVE_LIBDEFLATE
    struct libdeflate_compressor *ldc;
    struct libdeflate_decompressor *ldd;
#endif
    uint8_t *buf[3];
    size_t cap[3];
};

static pthread_key_t zkey;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zctx_free(void *p)
{
    struct zctx *z = p;
    if (z->def_init)
        deflateEnd(&z->def);
    if (z->inf_init)
        inflateEnd(&z->inf);
#ifdef VDK_HAVE_LIBDEFLATE
    if (z->ldc)
        libdeflate_free_compressor(z->ldc);
    if (z->ldd)
        libdeflate_free_decompressor(z->ldd);
#endif
    for (int i = 0; i < 3; i++)
        free(z->buf[i]);
    free(z);
}

static void zkey_make(void)
{
    (void)pthread_key_create(&zkey, zctx_free);
}

static struct zctx *zctx_get(void)
{
    pthread_once(&zonce, zkey_make);
    struct zctx *z = pthread_getspecific(zkey);
    if (!z && (z = calloc(1, sizeof(*z))) && pthread_setspecific(zkey, z) != 0) {
        free(z);
        z = NULL;
    }
    return z;
}

uint8_t *vmdk_thread_buf(int which, size_t size)
{
    struct zctx *z = zctx_get();
    if (!z)
        return NULL;
    if (z->cap[which] < size) {
        uint8_t *nb = realloc(z->buf[which], size);
        if (!nb)
            return NULL;
        z->buf[which] = nb;
        z->cap[which] = size;
    }
    return z->buf[which];
}

/* A zlib stream at level 6 (zlib's default), with this thread's state. */
static int zdeflate(uint8_t *out, uLongf *outlen, const uint8_t *in, uLong inlen)
{
    struct zctx *z = zctx_get();
    if (!z)
        return Z_MEM_ERROR;
#ifdef VDK_HAVE_LIBDEFLATE
    if (!z->ldc && !(z->ldc = libdeflate_alloc_compressor(6)))
        return Z_MEM_ERROR;
    size_t n = libdeflate_zlib_compress(z->ldc, in, inlen, out, *outlen);
    if (!n)
        return Z_BUF_ERROR;
    *outlen = (uLongf)n;
    return Z_OK;
#endif
    if (!z->def_init) {
        if (deflateInit(&z->def, Z_DEFAULT_COMPRESSION) != Z_OK)
            return Z_MEM_ERROR;
        z->def_init = true;
    } else if (deflateReset(&z->def) != Z_OK) {
        return Z_STREAM_ERROR;
    }
    z->def.next_in = (Bytef *)in;
    z->def.avail_in = (uInt)inlen;
    z->def.next_out = out;
    z->def.avail_out = (uInt)*outlen;
    int r = deflate(&z->def, Z_FINISH);
    if (r != Z_STREAM_END)
        return r == Z_OK ? Z_BUF_ERROR : r;
    *outlen = z->def.total_out;
    return Z_OK;
}

/* One zlib stream into out (at most *outlen bytes), this thread's state.
   Bytes after the stream's end are ignored (a grain's sector padding). */
static int zinflate(uint8_t *out, uLongf *outlen, const uint8_t *in, uLong inlen)
{
    struct zctx *z = zctx_get();
    if (!z)
        return Z_MEM_ERROR;
#ifdef VDK_HAVE_LIBDEFLATE
    if (!z->ldd && !(z->ldd = libdeflate_alloc_decompressor()))
        return Z_MEM_ERROR;
    size_t used = 0, got = 0;
    enum libdeflate_result lr = libdeflate_zlib_decompress_ex(z->ldd, in, inlen, out, *outlen,
                                                              &used, &got);
    if (lr != LIBDEFLATE_SUCCESS)
        return Z_DATA_ERROR;
    *outlen = (uLongf)got;
    return Z_OK;
#endif
    if (!z->inf_init) {
        if (inflateInit(&z->inf) != Z_OK)
            return Z_MEM_ERROR;
        z->inf_init = true;
    } else if (inflateReset(&z->inf) != Z_OK) {
        return Z_STREAM_ERROR;
    }
    z->inf.next_in = (Bytef *)in;
    z->inf.avail_in = (uInt)inlen;
    z->inf.next_out = out;
    z->inf.avail_out = (uInt)*outlen;
    int r = inflate(&z->inf, Z_FINISH);
    /* A grain that fills the buffer exactly ends the stream too. */
    if (r != Z_STREAM_END)
        return r == Z_OK || r == Z_BUF_ERROR ? Z_DATA_ERROR : r;
    *outlen = z->inf.total_out;
    return Z_OK;
}

int vmdk_cgrain_read(struct vmdk_extent *e, uint64_t g, uint64_t sec, uint8_t *out)
{
    uint64_t off = sec * VMDK_SECTOR;
    uint64_t cap = VMDK_MAX_CGRAIN(e->grain);
    if (sec > e->file_len / VMDK_SECTOR || off >= e->file_len)
        return -ERANGE;
    uint64_t avail = e->file_len - off;
    uint64_t size;
    if (e->has_marker) {
        uint8_t m[12];
        if (avail < 12)
            return -ERANGE;
        int r = vdk_pread(e->file, m, 12, off, 0);
        if (r < 0)
            return r;
        size = vmdk_le32(m + 8);
        if (vmdk_le64(m) != g * (e->grain / VMDK_SECTOR) || size == 0 || size > cap ||
            size > avail - 12)
            return -EINVAL;
        off += 12;
    } else {
        size = avail < cap ? avail : cap;
    }
    uint8_t *in = vmdk_thread_buf(1, size);
    if (!in)
        return -ENOMEM;
    int r = vdk_pread(e->file, in, size, off, 0);
    if (r == 0) {
        uLongf outlen = (uLongf)e->grain;
        if (zinflate(out, &outlen, in, (uLong)size) != Z_OK)
            r = -EINVAL;
        else if (outlen < e->grain)
            memset(out + outlen, 0, e->grain - outlen);
    }
    return r;
}

long vmdk_cgrain_build(const struct vmdk_extent *e, uint64_t g, const uint8_t *grain,
                       uint8_t *out, size_t cap)
{
    size_t hdr = e->has_marker ? 12 : 0;
    if (cap < hdr)
        return -ENOSPC;
    uLongf clen = (uLongf)(cap - hdr);
    if (zdeflate(out + hdr, &clen, grain, (uLong)e->grain) != Z_OK)
        return -ENOSPC;
    if (hdr) {
        vmdk_put_le64(out, g * (e->grain / VMDK_SECTOR));
        vmdk_put_le32(out + 8, (uint32_t)clen);
    }
    size_t total = hdr + clen;
    size_t padded = (size_t)vdk_align_up(total, VMDK_SECTOR);
    if (padded > cap)
        return -ENOSPC;
    memset(out + total, 0, padded - total);
    return (long)padded;
}

void vmdk_marker_build(uint8_t m[VMDK_SECTOR], uint64_t sectors, uint32_t type)
{
    memset(m, 0, VMDK_SECTOR);
    vmdk_put_le64(m, sectors);
    vmdk_put_le32(m + 12, type);
}

static bool marker_is(const uint8_t *m, uint32_t type)
{
    return vmdk_le32(m + 8) == 0 && vmdk_le32(m + 12) == type;
}

int vmdk_footer_read(struct vdk_node *file, uint64_t file_len, uint8_t buf[VMDK_SECTOR],
                     struct vdk_error **errp)
{
    uint8_t tail[3 * VMDK_SECTOR];
    if (file_len < 4 * VMDK_SECTOR)
        return vdk_error_setf(errp, EINVAL, "streamOptimized VMDK has no footer (the file "
                              "is truncated)");
    int r = vdk_pread(file, tail, sizeof(tail), vdk_align_down(file_len, VMDK_SECTOR) -
                      sizeof(tail), 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VMDK footer");
    if (!marker_is(tail, VMDK_MARKER_FOOTER) || vmdk_le32(tail + VMDK_SECTOR) != VMDK4_MAGIC ||
        !marker_is(tail + 2 * VMDK_SECTOR, VMDK_MARKER_EOS))
        return vdk_error_setf(errp, EINVAL, "streamOptimized VMDK has no valid footer and "
                              "end-of-stream marker (the file is truncated or damaged)");
    memcpy(buf, tail + VMDK_SECTOR, VMDK_SECTOR);
    return 0;
}

int vmdk_footer_move(struct vmdk_extent *e)
{
    uint8_t tail[3 * VMDK_SECTOR];
    vmdk_marker_build(tail, 1, VMDK_MARKER_FOOTER);
    memcpy(tail + VMDK_SECTOR, e->header, VMDK_SECTOR);
    vmdk_marker_build(tail + 2 * VMDK_SECTOR, 0, VMDK_MARKER_EOS);
    int r = vdk_pwrite(e->file, tail, sizeof(tail), e->next_alloc, 0);
    if (r == 0 && e->next_alloc + sizeof(tail) > e->file_len)
        e->file_len = e->next_alloc + sizeof(tail);
    return r;
}

int vmdk_stream_finish(struct vmdk_extent *e, uint64_t capacity)
{
    uint64_t gt_bytes = vdk_align_up((uint64_t)e->gtes * 4, VMDK_SECTOR);
    uint64_t gd_bytes = vdk_align_up((uint64_t)e->gd_entries * 4, VMDK_SECTOR);
    uint64_t pos = e->stream_end;
    uint8_t m[VMDK_SECTOR];
    uint8_t *buf = calloc(1, gt_bytes > gd_bytes ? gt_bytes : gd_bytes);
    int r = buf ? 0 : -ENOMEM;
    for (uint32_t i = 0; r == 0 && i < e->gd_entries; i++) {
        e->gd[i] = 0;
        if (!e->gt[i])
            continue;
        vmdk_marker_build(m, gt_bytes / VMDK_SECTOR, VMDK_MARKER_GT);
        memset(buf, 0, gt_bytes);
        for (uint32_t k = 0; k < e->gtes; k++)
            vmdk_put_le32(buf + 4 * (size_t)k, e->gt[i][k]);
        if ((r = vdk_pwrite(e->file, m, VMDK_SECTOR, pos, 0)) < 0 ||
            (r = vdk_pwrite(e->file, buf, gt_bytes, pos + VMDK_SECTOR, 0)) < 0)
            break;
        e->gd[i] = (uint32_t)((pos + VMDK_SECTOR) / VMDK_SECTOR);
        pos += VMDK_SECTOR + gt_bytes;
    }
    uint64_t gd_pos = pos + VMDK_SECTOR;
    if (r == 0) {
        vmdk_marker_build(m, gd_bytes / VMDK_SECTOR, VMDK_MARKER_GD);
        memset(buf, 0, gd_bytes);
        for (uint32_t k = 0; k < e->gd_entries; k++)
            vmdk_put_le32(buf + 4 * (size_t)k, e->gd[k]);
        if ((r = vdk_pwrite(e->file, m, VMDK_SECTOR, pos, 0)) == 0)
            r = vdk_pwrite(e->file, buf, gd_bytes, gd_pos, 0);
        pos = gd_pos + gd_bytes;
    }
    if (r == 0) {
        /* Footer: the header with the grain directory's real place. */
        uint8_t foot[3 * VMDK_SECTOR];
        vmdk_marker_build(foot, 1, VMDK_MARKER_FOOTER);
        struct vmdk_hdr_params p = {
            .version = e->version, .flags = e->flags, .capacity = capacity,
            .grain = e->grain / VMDK_SECTOR, .desc_off = e->desc_off / VMDK_SECTOR,
            .desc_size = e->desc_size / VMDK_SECTOR, .gtes = e->gtes,
            .rgd_off = 0, .gd_off = gd_pos / VMDK_SECTOR,
            .overhead = e->overhead / VMDK_SECTOR, .compress = e->compress_algo,
        };
        vmdk_header_build(foot + VMDK_SECTOR, &p);
        vmdk_marker_build(foot + 2 * VMDK_SECTOR, 0, VMDK_MARKER_EOS);
        r = vdk_pwrite(e->file, foot, sizeof(foot), pos, 0);
        pos += sizeof(foot);
    }
    if (r == 0 && e->file_len > pos)
        r = vdk_truncate(e->file, pos, VDK_PREALLOC_OFF, true, NULL);
    if (r == 0) {
        e->file_len = pos;
        e->stream_tail = true;
    }
    free(buf);
    return r;
}
