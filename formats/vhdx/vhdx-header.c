/* SPDX-License-Identifier: MIT */
/*
 * VHDX: CRC-32C, GUIDs, the two headers and the region table.
 *
 * Headers: both are read; one is valid when its signature, CRC-32C and
 * version hold, and the valid one with the higher sequence number is
 * current.  An update writes the other slot with the next sequence number
 * and flushes, so a crash leaves the old current header intact.
 * Region table: the first copy whose checksum holds is used; duplicate
 * or overlapping regions, regions over the headers or the log, and
 * unknown regions marked required are refused.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

const uint8_t vhdx_guid_bat[16] = { 0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42, 0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
const uint8_t vhdx_guid_metadata[16] = { 0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
const uint8_t vhdx_guid_file_params[16] = { 0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d, 0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
const uint8_t vhdx_guid_disk_size[16] = { 0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48, 0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
const uint8_t vhdx_guid_page83[16] = { 0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45, 0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
const uint8_t vhdx_guid_lss[16] = { 0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47, 0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
const uint8_t vhdx_guid_pss[16] = { 0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44, 0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
const uint8_t vhdx_guid_parent_locator[16] = { 0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45, 0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
const uint8_t vhdx_guid_locator_type[16] = { 0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a, 0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t vhdx_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
    static const uint8_t zero[4];
    uint32_t c = vhdx_crc32c(0, buf, csum_off);
    c = vhdx_crc32c(c, zero, 4);
    return vhdx_crc32c(c, buf + csum_off + 4, len - csum_off - 4);
}

void vhdx_guid_to_str(const uint8_t g[16], char buf[39])
{
    char s[37];
    fmt_guid_format(g, s);
    snprintf(buf, 39, "{%s}", s);
}

int vhdx_guid_from_str(const char *s, uint8_t g[16])
{
    unsigned v[11];
    char tail;
    if (*s == '{')
        s++;
    if (sscanf(s, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x%c", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &tail) < 11)
        return -EINVAL;
    fmt_put_le32(g, v[0]);
    fmt_put_le16(g + 4, (uint16_t)v[1]);
    fmt_put_le16(g + 6, (uint16_t)v[2]);
    for (int i = 0; i < 8; i++)
        g[8 + i] = (uint8_t)v[3 + i];
    return 0;
}

int vhdx_header_parse(const uint8_t *b, struct vhdx_header *h)
{
    if (memcmp(b, "head", 4) != 0)
        return -EINVAL;
    h->checksum = fmt_le32(b + 4);
    if (h->checksum != vhdx_checksum(b, VHDX_HEADER_SIZE, 4))
        return -EINVAL;
    h->seq = fmt_le64(b + 8);
    memcpy(h->file_write_guid, b + 16, 16);
    memcpy(h->data_write_guid, b + 32, 16);
    memcpy(h->log_guid, b + 48, 16);
    h->log_version = fmt_le16(b + 64);
    h->version = fmt_le16(b + 66);
    h->log_length = fmt_le32(b + 68);
    h->log_offset = fmt_le64(b + 72);
    return h->version == 1 ? 0 : -EINVAL;
}

void vhdx_header_build(const struct vhdx_header *h, uint8_t b[VHDX_HEADER_SIZE])
{
    memset(b, 0, VHDX_HEADER_SIZE);
    memcpy(b, "head", 4);
    fmt_put_le64(b + 8, h->seq);
    memcpy(b + 16, h->file_write_guid, 16);
    memcpy(b + 32, h->data_write_guid, 16);
    memcpy(b + 48, h->log_guid, 16);
    fmt_put_le16(b + 64, h->log_version);
    fmt_put_le16(b + 66, h->version);
    fmt_put_le32(b + 68, h->log_length);
    fmt_put_le64(b + 72, h->log_offset);
    fmt_put_le32(b + 4, vhdx_checksum(b, VHDX_HEADER_SIZE, 4));
}

int vhdx_headers_read(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len,
                      struct vdk_error **errp)
{
    uint8_t *buf = malloc(VHDX_HEADER_SIZE);
    struct vhdx_header h[2];
    bool ok[2];
    if (!buf)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    for (int i = 0; i < 2; i++) {
        int r = vdk_pread(n->file, buf, VHDX_HEADER_SIZE,
                          i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF, 0);
        if (r < 0) {
            free(buf);
            return vdk_error_setf_errno(errp, r, "cannot read the VHDX headers");
        }
        ok[i] = vhdx_header_parse(buf, &h[i]) == 0;
    }
    free(buf);
    if (!ok[0] && !ok[1])
        return vdk_error_setf(errp, EINVAL, "No valid VHDX header found");
    int cur = !ok[0] ? 1 : !ok[1] ? 0 : h[1].seq > h[0].seq ? 1 : 0;
    s->hdr = h[cur];
    s->cur_hdr = cur;
    const struct vhdx_header *c = &s->hdr;
    bool has_log = !fmt_uuid_is_null(c->log_guid);
    if (c->log_version != 0)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VHDX log version %u", c->log_version);
    if (c->log_offset % VHDX_MiB || c->log_length % VHDX_MiB ||
        (c->log_length && c->log_offset < VHDX_MiB) ||
        c->log_offset + c->log_length > file_len || (has_log && !c->log_length))
        return vdk_error_setf(errp, EINVAL, "VHDX log at 0x%" PRIx64 " (%" PRIu32
                              " bytes) is misaligned or outside the file", c->log_offset,
                              c->log_length);
    return 0;
}

int vhdx_header_update(struct vdk_node *n, struct vhdx_state *s)
{
    uint8_t *buf = malloc(VHDX_HEADER_SIZE);
    if (!buf)
        return -ENOMEM;
    struct vhdx_header h = s->hdr;
    h.seq++;
    vhdx_header_build(&h, buf);
    int slot = 1 - s->cur_hdr;
    int r = vdk_pwrite(n->file, buf, VHDX_HEADER_SIZE,
                       slot ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF, 0);
    free(buf);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0) {
        s->hdr = h;
        s->cur_hdr = slot;
    }
    return r;
}

static bool overlaps(uint64_t a, uint64_t al, uint64_t b, uint64_t bl)
{
    return a < b + bl && b < a + al;
}

static int regions_parse(const uint8_t *t, struct vhdx_state *s, uint64_t file_len,
                         struct vdk_error **errp)
{
    uint32_t count = fmt_le32(t + 8);
    if (count > VHDX_RT_MAX_ENTRIES)
        return vdk_error_setf(errp, EINVAL, "VHDX region table has %" PRIu32 " entries "
                              "(at most %u)", count, VHDX_RT_MAX_ENTRIES);
    bool have_bat = false, have_meta = false;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = t + 16 + 32 * (size_t)i;
        uint64_t off = fmt_le64(e + 16);
        uint32_t len = fmt_le32(e + 24);
        bool required = fmt_le32(e + 28) & 1;
        bool is_bat = memcmp(e, vhdx_guid_bat, 16) == 0;
        bool is_meta = memcmp(e, vhdx_guid_metadata, 16) == 0;
        char g[39];
        vhdx_guid_to_str(e, g);
        if (!is_bat && !is_meta && required)
            return vdk_error_setf(errp, ENOTSUP, "VHDX region %s is required but unknown", g);
        if ((is_bat && have_bat) || (is_meta && have_meta))
            return vdk_error_setf(errp, EINVAL, "VHDX region %s appears twice", g);
        if (off % VHDX_MiB || len % VHDX_MiB || !len || off < VHDX_MiB || off + len > file_len)
            return vdk_error_setf(errp, EINVAL, "VHDX region %s at 0x%" PRIx64 " (%" PRIu32
                                  " bytes) is misaligned or outside the file", g, off, len);
        if (s->hdr.log_length && overlaps(off, len, s->hdr.log_offset, s->hdr.log_length))
            return vdk_error_setf(errp, EINVAL, "VHDX region %s overlaps the log", g);
        for (uint32_t k = 0; k < i; k++) {
            const uint8_t *o = t + 16 + 32 * (size_t)k;
            if (overlaps(off, len, fmt_le64(o + 16), fmt_le32(o + 24)))
                return vdk_error_setf(errp, EINVAL, "VHDX regions %" PRIu32 " and %" PRIu32
                                      " overlap", k, i);
        }
        if (is_bat) {
            s->bat_region = (struct vhdx_region){ off, len };
            have_bat = true;
        } else if (is_meta) {
            s->meta_region = (struct vhdx_region){ off, len };
            have_meta = true;
        }
    }
    if (!have_bat || !have_meta)
        return vdk_error_setf(errp, EINVAL, "VHDX region table lacks the %s region",
                              have_bat ? "metadata" : "BAT");
    return 0;
}

int vhdx_regions_read(struct vdk_node *n, struct vhdx_state *s, uint64_t file_len,
                      struct vdk_error **errp)
{
    uint8_t *t = malloc(VHDX_RT_SIZE);
    if (!t)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    for (int i = 0; i < 2; i++) {
        int r = vhdx_file_read(n, i ? VHDX_RT2_OFF : VHDX_RT1_OFF, VHDX_RT_SIZE, t);
        if (r < 0) {
            free(t);
            return vdk_error_setf_errno(errp, r, "cannot read the VHDX region table");
        }
        if (memcmp(t, "regi", 4) != 0 || fmt_le32(t + 4) != vhdx_checksum(t, VHDX_RT_SIZE, 4))
            continue;
        r = regions_parse(t, s, file_len, errp);
        free(t);
        return r;
    }
    free(t);
    return vdk_error_setf(errp, EINVAL, "No valid VHDX region table found");
}

int vhdx_file_read(struct vdk_node *n, uint64_t off, uint64_t len, void *buf)
{
    struct vhdx_state *s = n->opaque;
    int r = vdk_pread(n->file, buf, len, off, 0);
    if (r < 0)
        return r;
    for (size_t i = 0; i < s->n_ovl; i++) {
        const struct vhdx_overlay *o = &s->ovl[i];
        if (!overlaps(o->off, o->len, off, len))
            continue;
        uint64_t a = o->off > off ? o->off : off;
        uint64_t b = vdk_min_u64(o->off + o->len, off + len);
        if (o->data)
            memcpy((uint8_t *)buf + (a - off), o->data + (a - o->off), b - a);
        else
            memset((uint8_t *)buf + (a - off), 0, b - a);
    }
    return 0;
}
