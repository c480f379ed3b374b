/* SPDX-License-Identifier: MIT */
/*
 * VHD footer: byte order helpers, checksum, parsing and serialising the
 * 512-byte footer, CHS geometry and the rules that turn a footer into a
 * virtual size.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "formats/fmt-util.h"
#include "formats/vhd/vhd.h"

uint16_t vhd_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

uint32_t vhd_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t vhd_be64(const uint8_t *p) { return ((uint64_t)vhd_be32(p) << 32) | vhd_be32(p + 4); }

void vhd_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void vhd_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

void vhd_put_be64(uint8_t *p, uint64_t v)
{
    vhd_put_be32(p, (uint32_t)(v >> 32));
    vhd_put_be32(p + 4, (uint32_t)v);
}

uint32_t vhd_checksum(const uint8_t *buf, size_t len, size_t csum_off)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i++)
        if (i < csum_off || i >= csum_off + 4)
            sum += buf[i];
    return ~sum;
}

/* Footer field offsets. */
enum {
    F_COOKIE = 0, F_FEATURES = 8, F_VERSION = 12, F_DATA_OFFSET = 16,
    F_TIMESTAMP = 24, F_CREATOR_APP = 28, F_CREATOR_VER = 32, F_CREATOR_OS = 36,
    F_ORIG_SIZE = 40, F_CUR_SIZE = 48, F_CYLS = 56, F_HEADS = 58, F_SPT = 59,
    F_TYPE = 60, F_CHECKSUM = 64, F_UUID = 68, F_SAVED = 84,
};

int vhd_footer_parse(const uint8_t buf[VHD_FOOTER_SIZE], struct vhd_footer *f,
                     struct vdk_error **errp)
{
    if (memcmp(buf + F_COOKIE, "conectix", 8) != 0)
        return vdk_error_setf(errp, EINVAL, "no VHD footer (cookie 'conectix' not found)");
    uint32_t stored = vhd_be32(buf + F_CHECKSUM);
    uint32_t computed = vhd_checksum(buf, VHD_FOOTER_SIZE, F_CHECKSUM);
    if (stored != computed)
        return vdk_error_setf(errp, EINVAL, "VHD footer checksum mismatch (stored 0x%08x, "
                              "computed 0x%08x)", stored, computed);
    memset(f, 0, sizeof(*f));
    f->features = vhd_be32(buf + F_FEATURES);
    f->version = vhd_be32(buf + F_VERSION);
    f->data_offset = vhd_be64(buf + F_DATA_OFFSET);
    f->timestamp = vhd_be32(buf + F_TIMESTAMP);
    memcpy(f->creator_app, buf + F_CREATOR_APP, 4);
    f->creator_version = vhd_be32(buf + F_CREATOR_VER);
    f->creator_os = vhd_be32(buf + F_CREATOR_OS);
    f->orig_size = vhd_be64(buf + F_ORIG_SIZE);
    f->cur_size = vhd_be64(buf + F_CUR_SIZE);
    f->cyls = vhd_be16(buf + F_CYLS);
    f->heads = buf[F_HEADS];
    f->spt = buf[F_SPT];
    f->type = vhd_be32(buf + F_TYPE);
    f->checksum = stored;
    memcpy(f->uuid, buf + F_UUID, 16);
    f->saved_state = buf[F_SAVED];
    return 0;
}

void vhd_footer_build(struct vhd_footer *f, uint8_t buf[VHD_FOOTER_SIZE])
{
    memset(buf, 0, VHD_FOOTER_SIZE);
    memcpy(buf + F_COOKIE, "conectix", 8);
    vhd_put_be32(buf + F_FEATURES, f->features);
    vhd_put_be32(buf + F_VERSION, f->version);
    vhd_put_be64(buf + F_DATA_OFFSET, f->data_offset);
    vhd_put_be32(buf + F_TIMESTAMP, f->timestamp);
    memcpy(buf + F_CREATOR_APP, f->creator_app, 4);
    vhd_put_be32(buf + F_CREATOR_VER, f->creator_version);
    vhd_put_be32(buf + F_CREATOR_OS, f->creator_os);
    vhd_put_be64(buf + F_ORIG_SIZE, f->orig_size);
    vhd_put_be64(buf + F_CUR_SIZE, f->cur_size);
    vhd_put_be16(buf + F_CYLS, f->cyls);
    buf[F_HEADS] = f->heads;
    buf[F_SPT] = f->spt;
    vhd_put_be32(buf + F_TYPE, f->type);
    memcpy(buf + F_UUID, f->uuid, 16);
    buf[F_SAVED] = f->saved_state;
    f->checksum = vhd_checksum(buf, VHD_FOOTER_SIZE, F_CHECKSUM);
    vhd_put_be32(buf + F_CHECKSUM, f->checksum);
}

/*
 * The specification's geometry: 17 sectors per track while 4..16 heads
 * can hold the cylinders (at most 1024 per head), then 31, then 63, and
 * 255 sectors with 16 heads for the largest disks.
 */
void vhd_geometry(uint64_t sectors, uint16_t *cyls, uint8_t *heads, uint8_t *spt)
{
    uint64_t cth, h, s;
    if (sectors > VHD_CHS_MAX_SECTORS)
        sectors = VHD_CHS_MAX_SECTORS;
    if (sectors >= 65535ull * 16 * 63) {
        s = 255;
        h = 16;
        cth = sectors / s;
    } else {
        s = 17;
        cth = sectors / s;
        h = (cth + 1023) / 1024;
        if (h < 4)
            h = 4;
        if (cth >= h * 1024 || h > 16) {
            s = 31;
            h = 16;
            cth = sectors / s;
        }
        if (cth >= h * 1024) {
            s = 63;
            h = 16;
            cth = sectors / s;
        }
    }
    *cyls = (uint16_t)(cth / h);
    *heads = (uint8_t)h;
    *spt = (uint8_t)s;
}

/*
 * qemu-img grows the request until the geometry covers it, so the disk is
 * never smaller than asked for.  The step between geometries is at most
 * 16*255 sectors, which bounds the loop.
 */
uint64_t vhd_geometry_round(uint64_t sectors, uint16_t *cyls, uint8_t *heads,
                            uint8_t *spt)
{
    uint64_t product = 0;
    *cyls = 0;
    *heads = 0;
    *spt = 0;
    for (uint64_t i = 0; product < sectors && i < (1u << 20); i++) {
        vhd_geometry(sectors + i, cyls, heads, spt);
        product = (uint64_t)*cyls * *heads * *spt;
        if (product == VHD_CHS_MAX_SECTORS)
            return sectors;
    }
    return product;
}

static bool creator_uses_current_size(const uint8_t app[4])
{
    static const char *const apps[] = { "win ", "qem2", "d2v ", "CTXS", "tap\0" };
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
        if (memcmp(app, apps[i], 4) == 0)
            return true;
    return false;
}

uint64_t vhd_footer_virtual_size(const struct vhd_footer *f, enum vhd_size_calc calc)
{
    bool current;
    if (calc == VHD_SIZE_CHS)
        current = false;
    else if (calc == VHD_SIZE_CURRENT)
        current = true;
    else
        current = creator_uses_current_size(f->creator_app);
    /* A maximal geometry cannot describe the disk: trust current_size. */
    if (f->cyls == VHD_CHS_MAX_C && f->heads == VHD_CHS_MAX_H && f->spt == VHD_CHS_MAX_S)
        current = true;
    if (current)
        return f->cur_size & ~(uint64_t)(VHD_SECTOR - 1);
    return (uint64_t)f->cyls * f->heads * f->spt * VHD_SECTOR;
}

int vhd_uuid_generate(uint8_t uuid[16])
{
    return fmt_uuid_generate(uuid);
}

void vhd_uuid_format(const uint8_t u[16], char buf[37])
{
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5], u[6],
             u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

uint32_t vhd_timestamp_now(void)
{
    time_t t = time(NULL);
    if (t < (time_t)VHD_EPOCH_OFFSET)
        return 0;
    return (uint32_t)((uint64_t)t - VHD_EPOCH_OFFSET);
}

const char *vhd_type_name(uint32_t type)
{
    switch (type) {
    case VHD_TYPE_FIXED: return "fixed";
    case VHD_TYPE_DYNAMIC: return "dynamic";
    case VHD_TYPE_DIFF: return "differencing";
    default: return "unknown";
    }
}
