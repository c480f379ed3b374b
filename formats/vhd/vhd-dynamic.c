/* SPDX-License-Identifier: MIT */
/*
 * Dynamic and differencing VHD metadata: finding the footer (or its copy
 * at offset 0), the dynamic header, the block allocation table, and the
 * parent locators of differencing images.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/vhd/vhd.h"

/* Dynamic header field offsets. */
enum {
    H_COOKIE = 0, H_DATA_OFFSET = 8, H_TABLE_OFFSET = 16, H_VERSION = 24,
    H_MAX_ENTRIES = 28, H_BLOCK_SIZE = 32, H_CHECKSUM = 36, H_PARENT_UUID = 40,
    H_PARENT_TS = 56, H_PARENT_NAME = 64, H_LOCATORS = 576, H_LOCATOR_SIZE = 24,
};

int vhd_dyn_header_parse(const uint8_t buf[VHD_DYN_HEADER_SIZE],
                         struct vhd_dyn_header *h, struct vdk_error **errp)
{
    if (memcmp(buf + H_COOKIE, "cxsparse", 8) != 0)
        return vdk_error_setf(errp, EINVAL, "no VHD dynamic header (cookie 'cxsparse' "
                              "not found)");
    uint32_t stored = vhd_be32(buf + H_CHECKSUM);
    uint32_t computed = vhd_checksum(buf, VHD_DYN_HEADER_SIZE, H_CHECKSUM);
    if (stored != computed)
        return vdk_error_setf(errp, EINVAL, "VHD dynamic header checksum mismatch (stored "
                              "0x%08x, computed 0x%08x)", stored, computed);
    memset(h, 0, sizeof(*h));
    h->data_offset = vhd_be64(buf + H_DATA_OFFSET);
    h->table_offset = vhd_be64(buf + H_TABLE_OFFSET);
    h->version = vhd_be32(buf + H_VERSION);
    h->max_entries = vhd_be32(buf + H_MAX_ENTRIES);
    h->block_size = vhd_be32(buf + H_BLOCK_SIZE);
    h->checksum = stored;
    memcpy(h->parent_uuid, buf + H_PARENT_UUID, 16);
    h->parent_timestamp = vhd_be32(buf + H_PARENT_TS);
    memcpy(h->parent_name, buf + H_PARENT_NAME, sizeof(h->parent_name));
    for (int i = 0; i < VHD_LOCATORS; i++) {
        const uint8_t *l = buf + H_LOCATORS + i * H_LOCATOR_SIZE;
        h->loc[i].code = vhd_be32(l);
        h->loc[i].space = vhd_be32(l + 4);
        h->loc[i].len = vhd_be32(l + 8);
        h->loc[i].offset = vhd_be64(l + 16);
    }
    return 0;
}

void vhd_dyn_header_build(struct vhd_dyn_header *h, uint8_t buf[VHD_DYN_HEADER_SIZE])
{
    memset(buf, 0, VHD_DYN_HEADER_SIZE);
    memcpy(buf + H_COOKIE, "cxsparse", 8);
    vhd_put_be64(buf + H_DATA_OFFSET, h->data_offset);
    vhd_put_be64(buf + H_TABLE_OFFSET, h->table_offset);
    vhd_put_be32(buf + H_VERSION, h->version);
    vhd_put_be32(buf + H_MAX_ENTRIES, h->max_entries);
    vhd_put_be32(buf + H_BLOCK_SIZE, h->block_size);
    memcpy(buf + H_PARENT_UUID, h->parent_uuid, 16);
    vhd_put_be32(buf + H_PARENT_TS, h->parent_timestamp);
    memcpy(buf + H_PARENT_NAME, h->parent_name, sizeof(h->parent_name));
    for (int i = 0; i < VHD_LOCATORS; i++) {
        uint8_t *l = buf + H_LOCATORS + i * H_LOCATOR_SIZE;
        vhd_put_be32(l, h->loc[i].code);
        vhd_put_be32(l + 4, h->loc[i].space);
        vhd_put_be32(l + 8, h->loc[i].len);
        vhd_put_be64(l + 16, h->loc[i].offset);
    }
    h->checksum = vhd_checksum(buf, VHD_DYN_HEADER_SIZE, H_CHECKSUM);
    vhd_put_be32(buf + H_CHECKSUM, h->checksum);
}

int vhd_read_footer(struct vdk_node *file, struct vhd_footer *f, uint8_t raw[VHD_FOOTER_SIZE],
                    bool *from_copy, struct vdk_error **errp)
{
    int64_t flen = vdk_get_length(file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of the file");
    if (flen < (int64_t)VHD_FOOTER_SIZE)
        return vdk_error_setf(errp, EINVAL, "file too small to be a VHD image (%" PRId64
                              " bytes)", flen);
    int r = vdk_pread(file, raw, VHD_FOOTER_SIZE, (uint64_t)flen - VHD_FOOTER_SIZE, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VHD footer");
    struct vdk_error *end_err = NULL;
    *from_copy = false;
    if (vhd_footer_parse(raw, f, &end_err) == 0)
        return 0;
    /* A dynamic image keeps a copy at offset 0: an allocation cut short
       by a crash leaves block data where the footer was. */
    uint8_t copy[VHD_FOOTER_SIZE];
    r = vdk_pread(file, copy, VHD_FOOTER_SIZE, 0, 0);
    if (r == 0 && vhd_footer_parse(copy, f, NULL) == 0 &&
        (f->type == VHD_TYPE_DYNAMIC || f->type == VHD_TYPE_DIFF)) {
        memcpy(raw, copy, VHD_FOOTER_SIZE);
        *from_copy = true;
        vdk_error_free(end_err);
        return 0;
    }
    vdk_error_propagate(errp, end_err);
    return -EINVAL;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

bool vhd_block_over_meta(const struct vhd_state *s, uint32_t e)
{
    uint64_t off = (uint64_t)e * VHD_SECTOR, len = (uint64_t)s->bitmap_size + s->block_size;
    if (off < VHD_FOOTER_SIZE ||
        ranges_overlap(off, len, s->footer.data_offset, VHD_DYN_HEADER_SIZE) ||
        ranges_overlap(off, len, s->hdr.table_offset, (uint64_t)s->hdr.max_entries * 4))
        return true;
    for (int i = 0; s->footer.type == VHD_TYPE_DIFF && i < VHD_LOCATORS; i++) {
        const struct vhd_locator *l = &s->hdr.loc[i];
        if (l->code && l->len && ranges_overlap(off, len, l->offset, l->len))
            return true;
    }
    return false;
}

int vhd_dynamic_open(struct vdk_node *n, struct vhd_state *s, struct vdk_error **errp)
{
    uint64_t flen = s->file_len;
    uint64_t hoff = s->footer.data_offset;
    uint8_t buf[VHD_DYN_HEADER_SIZE];
    int r;

    if (hoff > flen || flen - hoff < VHD_DYN_HEADER_SIZE)
        return vdk_error_setf(errp, EINVAL, "VHD dynamic header offset 0x%" PRIx64
                              " beyond the end of the file", hoff);
    if ((r = vdk_pread(n->file, buf, sizeof(buf), hoff, 0)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VHD dynamic header");
    if ((r = vhd_dyn_header_parse(buf, &s->hdr, errp)) < 0)
        return r;

    uint32_t bs = s->hdr.block_size;
    if (!vdk_is_pow2(bs) || bs < VHD_MIN_BLOCK_SIZE || bs > VHD_MAX_BLOCK_SIZE)
        return vdk_error_setf(errp, EINVAL, "invalid VHD block size %" PRIu32 " (must be a "
                              "power of two from 512 bytes to 256 MiB)", bs);
    s->block_size = bs;
    uint32_t bits = bs / VHD_SECTOR;
    s->bitmap_size = (uint32_t)vdk_align_up((bits + 7) / 8, VHD_SECTOR);

    uint64_t needed = (n->size + bs - 1) / bs;
    if (s->hdr.max_entries < needed)
        return vdk_error_setf(errp, EINVAL, "too few VHD BAT entries (%" PRIu32 ") for a "
                              "virtual size of %" PRIu64 " bytes (%" PRIu64 " needed)",
                              s->hdr.max_entries, n->size, needed);
    if (needed > VHD_MAX_BAT_ENTRIES)
        return vdk_error_setf(errp, EFBIG, "VHD BAT of %" PRIu64 " entries is too large",
                              needed);
    uint64_t toff = s->hdr.table_offset;
    uint64_t bat_bytes = (uint64_t)s->hdr.max_entries * 4;
    if (toff > flen || flen - toff < bat_bytes)
        return vdk_error_setf(errp, EINVAL, "VHD BAT at 0x%" PRIx64 " (%" PRIu64 " bytes) "
                              "beyond the end of the file", toff, bat_bytes);
    s->bat_entries = (uint32_t)needed;
    s->bat = malloc(needed ? needed * 4 : 4);
    s->bm_full = calloc(1, needed / 8 + 1);
    if (!s->bat || !s->bm_full) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory for the VHD BAT");
        goto fail;
    }
    if (needed && (r = vdk_pread(n->file, s->bat, needed * 4, toff, 0)) < 0) {
        r = vdk_error_setf_errno(errp, r, "cannot read the VHD BAT");
        goto fail;
    }

    uint64_t end = vhd_max_u64(hoff + VHD_DYN_HEADER_SIZE, toff + bat_bytes);
    end = vhd_max_u64(end, VHD_FOOTER_SIZE);
    uint64_t meta = end;
    for (uint32_t i = 0; i < needed; i++) {
        uint32_t e = vhd_be32((const uint8_t *)&s->bat[i]);
        s->bat[i] = e;
        if (e == VHD_BAT_UNUSED)
            continue;
        uint64_t off = (uint64_t)e * VHD_SECTOR;
        uint64_t len = (uint64_t)s->bitmap_size + bs;
        if (off > flen || flen - off < len) {
            r = vdk_error_setf(errp, EINVAL, "VHD BAT entry %" PRIu32 " points beyond the "
                               "end of the file (block at 0x%" PRIx64 ")", i, off);
            goto fail;
        }
        end = vhd_max_u64(end, off + len);
    }
    for (int i = 0; s->footer.type == VHD_TYPE_DIFF && i < VHD_LOCATORS; i++) {
        const struct vhd_locator *l = &s->hdr.loc[i];
        if (!l->code || !l->len)
            continue;
        if (l->len > VHD_MAX_LOCATOR_LEN || l->offset > flen || flen - l->offset < l->len) {
            r = vdk_error_setf(errp, EINVAL, "VHD parent locator %d (%" PRIu32 " bytes at "
                               "0x%" PRIx64 ") beyond the end of the file", i, l->len,
                               l->offset);
            goto fail;
        }
        end = vhd_max_u64(end, l->offset + l->len);
        meta = vhd_max_u64(meta, l->offset + l->len);
    }
    /* A block over the footer copy, dynamic header, BAT or locator data
       reads as those bytes, as in qemu; writes into it are refused (they
       would overwrite the metadata: qemu's first write there sets its
       bitmap over the BAT) and check reports it. */
    s->meta_blocks = 0;
    for (uint32_t i = 0; i < needed; i++) {
        if (s->bat[i] == VHD_BAT_UNUSED || !vhd_block_over_meta(s, s->bat[i]))
            continue;
        if (!s->meta_blocks)
            vdk_warn("VHD BAT entry %" PRIu32 " of '%s' (block at 0x%" PRIx64 ") overlaps the "
                     "image metadata: it reads as those bytes and writes to it are refused",
                     i, n->filename, (uint64_t)s->bat[i] * VHD_SECTOR);
        s->meta_blocks++;
    }
    s->meta_end = vdk_align_up(meta, VHD_SECTOR);
    s->alloc_off = s->used_end = vdk_align_up(end, VHD_SECTOR);
    /* Blocks go where the footer is now, unless that is inside metadata. */
    if (!s->footer_from_copy && flen - VHD_FOOTER_SIZE > s->alloc_off)
        s->alloc_off = vdk_align_up(flen - VHD_FOOTER_SIZE, VHD_SECTOR);
    return 0;
fail:
    free(s->bat);
    free(s->bm_full);
    s->bat = NULL;
    s->bm_full = NULL;
    return r;
}

/* ---- strings ---- */

char *vhd_utf16_to_utf8(const uint8_t *in, size_t in_len, bool be)
{
    char *out = malloc(in_len / 2 * 3 + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i + 1 < in_len; i += 2) {
        uint32_t c = be ? (uint32_t)(in[i] << 8 | in[i + 1]) : (uint32_t)(in[i + 1] << 8 | in[i]);
        if (c == 0)
            break;
        if (c >= 0xd800 && c < 0xdc00) {
            if (i + 3 >= in_len)
                goto bad;
            uint32_t c2 = be ? (uint32_t)(in[i + 2] << 8 | in[i + 3])
                             : (uint32_t)(in[i + 3] << 8 | in[i + 2]);
            if (c2 < 0xdc00 || c2 >= 0xe000)
                goto bad;
            c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
            i += 2;
        } else if (c >= 0xdc00 && c < 0xe000) {
            goto bad;
        }
        /* 4 output bytes for 4 input bytes (surrogates), else <= 3 per 2. */
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xc0 | c >> 6);
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xe0 | c >> 12);
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | c >> 18);
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (c & 0x3f));
        }
    }
    out[o] = 0;
    return out;
bad:
    free(out);
    return NULL;
}

static void put16(uint8_t *p, uint32_t c, bool be)
{
    p[be ? 0 : 1] = (uint8_t)(c >> 8);
    p[be ? 1 : 0] = (uint8_t)c;
}

long vhd_utf8_to_utf16(const char *in, uint8_t *out, size_t cap, bool be)
{
    const uint8_t *p = (const uint8_t *)in;
    size_t o = 0;
    while (*p) {
        uint32_t c;
        int extra;
        if (*p < 0x80) { c = *p; extra = 0; }
        else if ((*p & 0xe0) == 0xc0) { c = *p & 0x1f; extra = 1; }
        else if ((*p & 0xf0) == 0xe0) { c = *p & 0x0f; extra = 2; }
        else if ((*p & 0xf8) == 0xf0) { c = *p & 0x07; extra = 3; }
        else return -1;
        p++;
        for (int k = 0; k < extra; k++, p++) {
            if ((*p & 0xc0) != 0x80)
                return -1;
            c = (c << 6) | (*p & 0x3f);
        }
        if (c >= 0x10000) {
            if (o + 4 > cap)
                return -1;
            c -= 0x10000;
            put16(out + o, 0xd800 + (c >> 10), be);
            put16(out + o + 2, 0xdc00 + (c & 0x3ff), be);
            o += 4;
        } else {
            if (o + 2 > cap)
                return -1;
            put16(out + o, c, be);
            o += 2;
        }
    }
    return (long)o;
}

/* ---- parent locators ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "file://[localhost]/p%20q" -> "/p q" in place; NULL if not a file URL. */
static char *macx_to_path(char *url)
{
    char *p;
    if (strncmp(url, "file://", 7) != 0)
        return NULL;
    p = url + 7;
    if (strncmp(p, "localhost/", 10) == 0)
        p += 9;
    char *w = url;
    for (; *p; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *w++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = 0;
    return url;
}

/* Windows separators to '/'. */
static void windows_to_posix(char *s)
{
    for (; *s; s++)
        if (*s == '\\')
            *s = '/';
}

static bool path_exists(const char *child, const char *cand)
{
    char *p = vdk_path_combine(child, cand);
    bool ok = p && access(p, F_OK) == 0;
    free(p);
    return ok;
}

int vhd_parent_resolve(struct vdk_node *n, struct vhd_state *s, char **path,
                       struct vdk_error **errp)
{
    static const uint32_t order[] = { VHD_PLAT_W2RU, VHD_PLAT_W2KU, VHD_PLAT_MACX };
    char *cand[VHD_LOCATORS + 1] = { 0 };
    int nc = 0, r = 0;
    *path = NULL;

    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        for (int i = 0; i < VHD_LOCATORS; i++) {
            const struct vhd_locator *l = &s->hdr.loc[i];
            if (l->code != order[k] || !l->len)
                continue;
            uint8_t *data = malloc(l->len);
            if (!data) {
                r = -ENOMEM;
                goto out;
            }
            r = vdk_pread(n->file, data, l->len, l->offset, 0);
            if (r < 0) {
                free(data);
                vdk_error_setf_errno(errp, r, "cannot read VHD parent locator %d", i);
                goto out;
            }
            char *str;
            if (l->code == VHD_PLAT_MACX) {
                str = malloc(l->len + 1);
                if (str) {
                    memcpy(str, data, l->len);
                    str[l->len] = 0;
                    if (!macx_to_path(str)) {
                        free(str);
                        str = NULL;
                    }
                }
            } else {
                str = vhd_utf16_to_utf8(data, l->len, false);
                if (str)
                    windows_to_posix(str);
            }
            free(data);
            if (str && *str)
                cand[nc++] = str;
            else
                free(str);
        }
    }
    char *name = vhd_utf16_to_utf8(s->hdr.parent_name, sizeof(s->hdr.parent_name), true);
    if (name && *name) {
        windows_to_posix(name);
        cand[nc++] = name;
    } else {
        free(name);
    }
    if (nc == 0) {
        r = vdk_error_setf(errp, EINVAL, "differencing VHD records no parent file name");
        goto out;
    }
    for (int i = 0; i < nc && !*path; i++)
        if (path_exists(n->filename, cand[i]))
            *path = strdup(cand[i]);
    /* An image moved from elsewhere: look for the parent beside it. */
    for (int i = 0; i < nc && !*path; i++) {
        const char *base = strrchr(cand[i], '/');
        base = base ? base + 1 : cand[i];
        if (*base && path_exists(n->filename, base))
            *path = strdup(base);
    }
    if (!*path)
        *path = strdup(cand[0]);
    if (!*path)
        r = -ENOMEM;
out:
    if (r == -ENOMEM)
        vdk_error_setf(errp, ENOMEM, "out of memory");
    for (int i = 0; i < nc; i++)
        free(cand[i]);
    return r;
}
