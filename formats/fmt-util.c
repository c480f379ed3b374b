/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "block/driver.h"
#include "formats/fmt-util.h"

int fmt_uuid_generate(uint8_t uuid[16])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom(uuid + got, 16 - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)r;
    }
    uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
    uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
    return 0;
}

void fmt_guid_format(const uint8_t g[16], char buf[37])
{
    snprintf(buf, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             (unsigned)fmt_le32(g), fmt_le16(g + 4), fmt_le16(g + 6), g[8], g[9], g[10],
             g[11], g[12], g[13], g[14], g[15]);
}

int fmt_uuid_is_null(const uint8_t u[16])
{
    for (int i = 0; i < 16; i++)
        if (u[i])
            return 0;
    return 1;
}

int fmt_count_data_blocks(struct vdk_node *src, uint64_t size, uint64_t block_size,
                          uint64_t *count)
{
    uint64_t n = 0;
    for (uint64_t off = 0; off < size; off += block_size) {
        uint64_t left = vdk_min_u64(block_size, size - off), o = off;
        while (left) {
            uint64_t pnum = 0;
            int st = vdk_block_status_above(src, NULL, o, left, &pnum, NULL, NULL, NULL);
            if (st < 0)
                return st;
            if ((st & VDK_BS_DATA) && !(st & VDK_BS_ZERO)) {
                n++;
                break;
            }
            o += pnum;
            left -= pnum;
        }
    }
    *count = n;
    return 0;
}

int fmt_measure_size(struct vdk_node *src, uint64_t *size, struct vdk_error **errp)
{
    if (!src)
        return 0;
    int64_t len = vdk_get_length(src);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the size of the source");
    *size = (uint64_t)len;
    return 0;
}

int fmt_read_mapped(struct vdk_node *n, uint64_t block_size, fmt_block_map_fn map,
                    uint64_t offset, uint64_t bytes, void *buf)
{
    uint8_t *p = buf;
    while (bytes) {
        uint64_t idx = offset / block_size, in = offset % block_size;
        uint64_t len = vdk_min_u64(bytes, block_size - in);
        int64_t off = map(n, idx);
        if (off < 0)
            return (int)off;
        if (off == 0) {
            memset(p, 0, len);
        } else {
            int r = vdk_pread(n->file, p, len, (uint64_t)off + in, 0);
            if (r < 0)
                return r;
        }
        p += len;
        offset += len;
        bytes -= len;
    }
    return 0;
}

int fmt_check_reach(struct vdk_node *n, uint64_t off, uint64_t unit, bool *warned,
                    const char *what, const char *table)
{
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return (int)flen;
    if (off < (uint64_t)flen + unit)
        return 0;
    /* Several writers may race here: at worst the line appears twice. */
    if (!__atomic_exchange_n(warned, true, __ATOMIC_RELAXED))
        vdk_warn("%s '%s': a %s at byte %" PRIu64 " lies past the end of the file (%" PRId64
                 " bytes): the header or the %s is damaged; not writing there",
                 n->drv->name, n->filename, what, off, flen, table);
    return -EIO;
}
