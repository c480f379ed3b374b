/* SPDX-License-Identifier: MIT */
/*
 * Creating VHD images: fixed, dynamic, and differencing (a dynamic image
 * with a parent, which qemu-img cannot make).  Options and size rounding
 * are qemu-img's:
 *   size         requested size; rounded up to a CHS geometry unless
 *                force_size=on (then to a sector, with the geometry at its
 *                maximum and creator "qem2" so readers take current_size)
 *   subformat    dynamic (default) or fixed
 *   force_size   on/off, as above
 * and vdk's own:
 *   azure_align  round the size up to a multiple of 1 MiB and record it
 *                exactly (creator "qem2"), as Azure requires of the fixed
 *                VHDs it imports; implies force_size
 *   backing_file / backing_fmt
 *                make a differencing image of this VHD parent (format vpc);
 *                the size, geometry and creator come from the parent
 * Layout written: fixed = zeros (a hole) + footer; dynamic = footer copy,
 * dynamic header at 512, BAT at 1536 padded to a sector, parent locators
 * (differencing), footer.  Blocks are 2 MiB.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/vhd/vhd.h"

#define VHD_DEFAULT_BLOCK   (2u << 20)
#define VHD_CREATOR_VERSION 0x00050003u /* as qemu writes */
#define VHD_CREATOR_OS_WI2K 0x5769326bu /* "Wi2k" */
#define VHD_BAT_OFFSET      (VHD_FOOTER_SIZE + VHD_DYN_HEADER_SIZE)

static const char *const subformat_values[] = { "dynamic", "fixed", NULL };

const struct vdk_opt_desc vhd_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "subformat", VDK_OPT_ENUM, "Type of virtual hard disk format: dynamic (default) "
      "or fixed; an image with a backing file is a differencing image", "dynamic",
      subformat_values },
    { "force_size", VDK_OPT_BOOL, "Use the size as given (rounded to a sector) instead of "
      "rounding it up to the nearest CHS geometry", "off", NULL },
    { "azure_align", VDK_OPT_BOOL, "Round the size up to a multiple of 1 MiB and record it "
      "exactly, as Azure requires (implies force_size)", "off", NULL },
    { "backing_file", VDK_OPT_STRING, "File name of the parent VHD (makes a differencing "
      "image)", NULL, NULL },
    { "backing_fmt", VDK_OPT_STRING, "Format of the parent (only vpc)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

/* What the parent of a new differencing image contributes. */
struct parent_info {
    struct vhd_footer footer;
    uint64_t size;
    uint32_t mtime;
};

static int read_parent(const char *child, const char *backing, const char *fmt,
                       struct parent_info *pi, struct vdk_error **errp)
{
    if (fmt && strcmp(fmt, "vpc") != 0)
        return vdk_error_setf(errp, EINVAL, "the parent of a differencing VHD must be a "
                              "VHD (vpc), not '%s'", fmt);
    char *path = vdk_path_combine(child, backing);
    if (!path)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    struct vdk_node *p = NULL;
    int r = vdk_open(&p, path, "vpc", NULL, VDK_O_NO_BACKING | VDK_O_SHARE, errp);
    if (r < 0) {
        vdk_error_prepend(errp, "opening parent '%s'", backing);
        free(path);
        return r;
    }
    const struct vhd_state *ps = p->opaque;
    pi->footer = ps->footer;
    pi->size = p->size;
    struct stat st;
    pi->mtime = 0;
    if (stat(path, &st) == 0 && st.st_mtime > (time_t)VHD_EPOCH_OFFSET)
        pi->mtime = (uint32_t)((uint64_t)st.st_mtime - VHD_EPOCH_OFFSET);
    vdk_close(p);
    free(path);
    return 0;
}

/* Bytes outside [A-Za-z0-9/._~-] become %XX in a file URL. */
static char *file_url(const char *abs)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(abs);
    char *u = malloc(7 + len * 3 + 1), *w;
    if (!u)
        return NULL;
    memcpy(u, "file://", 7);
    w = u + 7;
    for (const unsigned char *p = (const unsigned char *)abs; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("/._~-", *p)) {
            *w++ = (char)*p;
        } else {
            *w++ = '%';
            *w++ = hex[*p >> 4];
            *w++ = hex[*p & 15];
        }
    }
    *w = 0;
    return u;
}

/* A path in Windows form (backslashes) as UTF-16LE into a new buffer. */
static uint8_t *windows_path_utf16(const char *path, uint32_t *len)
{
    size_t l = strlen(path);
    char *copy = strdup(path);
    uint8_t *out = malloc(l * 4 + 2);
    if (!copy || !out)
        goto bad;
    for (char *c = copy; *c; c++)
        if (*c == '/')
            *c = '\\';
    long n = vhd_utf8_to_utf16(copy, out, l * 4, false);
    if (n < 0 || (uint64_t)n > VHD_MAX_LOCATOR_LEN)
        goto bad;
    free(copy);
    *len = (uint32_t)n;
    return out;
bad:
    free(copy);
    free(out);
    return NULL;
}

/*
 * Parent locators W2ku (absolute), W2ru (as given, relative to the child)
 * and MacX (file URL), with their data laid out from *off.
 */
static int build_locators(const char *child, const char *backing, struct vhd_dyn_header *h,
                          uint8_t *data[3], uint64_t *off, struct vdk_error **errp)
{
    char *path = vdk_path_combine(child, backing);
    char *abs = path ? realpath(path, NULL) : NULL;
    free(path);
    if (!abs)
        return vdk_error_setf_errno(errp, errno ? errno : ENOMEM, "cannot resolve the "
                                    "parent path '%s'", backing);
    uint32_t codes[3] = { VHD_PLAT_W2KU, VHD_PLAT_W2RU, VHD_PLAT_MACX };
    uint32_t lens[3] = { 0 };
    data[0] = windows_path_utf16(abs, &lens[0]);
    data[1] = windows_path_utf16(backing, &lens[1]);
    char *url = file_url(abs);
    data[2] = (uint8_t *)url;
    lens[2] = url ? (uint32_t)strlen(url) : 0;
    free(abs);
    if (!data[0] || !data[1] || !url || lens[2] > VHD_MAX_LOCATOR_LEN)
        return vdk_error_setf(errp, EINVAL, "the parent path '%s' cannot be recorded "
                              "(too long or not UTF-8)", backing);
    for (int i = 0; i < 3; i++) {
        h->loc[i].code = codes[i];
        h->loc[i].len = lens[i];
        /* Data space in bytes, a multiple of the sector, as Windows writes it. */
        h->loc[i].space = (uint32_t)vdk_align_up(lens[i], VHD_SECTOR);
        h->loc[i].offset = *off;
        *off += h->loc[i].space;
    }
    long n = vhd_utf8_to_utf16(backing, h->parent_name, sizeof(h->parent_name) - 2, true);
    if (n < 0)
        return vdk_error_setf(errp, EINVAL, "the parent name '%s' is too long for the VHD "
                              "header (256 UTF-16 characters)", backing);
    return 0;
}

/* Size and geometry for a new image; fills f's size and CHS fields. */
static int plan_size(uint64_t size, bool force, bool azure, struct vhd_footer *f,
                     struct vdk_error **errp)
{
    if (size > VHD_MAX_SIZE)
        goto too_big;
    uint64_t sectors = (size + VHD_SECTOR - 1) / VHD_SECTOR;
    if (azure) {
        sectors = vdk_align_up(sectors * VHD_SECTOR, 1u << 20) / VHD_SECTOR;
        vhd_geometry(sectors, &f->cyls, &f->heads, &f->spt);
        memcpy(f->creator_app, "qem2", 4);
    } else if (force) {
        f->cyls = VHD_CHS_MAX_C;
        f->heads = VHD_CHS_MAX_H;
        f->spt = VHD_CHS_MAX_S;
        memcpy(f->creator_app, "qem2", 4);
    } else {
        sectors = vhd_geometry_round(sectors, &f->cyls, &f->heads, &f->spt);
        memcpy(f->creator_app, "qemu", 4);
    }
    if (sectors > VHD_MAX_SECTORS)
        goto too_big;
    f->cur_size = f->orig_size = sectors * VHD_SECTOR;
    return 0;
too_big:
    return vdk_error_setf(errp, EFBIG, "the image size is too large for file format 'vpc' "
                          "(at most 2040 GiB)");
}

/* A new image's metadata, decided from the options before anything is written. */
struct vhd_plan {
    struct vhd_footer f;
    struct vhd_dyn_header h;
    uint64_t size;
    int sub; /* 0 dynamic, 1 fixed */
    const char *backing;
};

static int vhd_plan(const char *filename, struct vdk_opts *opts, struct vhd_plan *pl,
                    struct vdk_error **errp)
{
    bool force = false, azure = false;
    int r;
    memset(pl, 0, sizeof(*pl));
    if ((r = vdk_opts_get_size(opts, "size", 0, &pl->size, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "force_size", false, &force, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "azure_align", false, &azure, errp)) < 0)
        return r;
    bool has_size = vdk_opts_has(opts, "size");
    pl->sub = vdk_opts_get_enum(opts, "subformat", subformat_values, 0, errp);
    if (pl->sub < 0)
        return pl->sub;
    const char *backing = vdk_opts_get(opts, "backing_file");
    const char *bfmt = vdk_opts_get(opts, "backing_fmt");
    if (backing && !*backing)
        backing = NULL;
    pl->backing = backing;
    if (bfmt && !backing)
        return vdk_error_setf(errp, EINVAL, "backing_fmt given without backing_file");

    struct vhd_footer *f = &pl->f;
    f->features = 2;
    f->version = 0x00010000;
    f->timestamp = vhd_timestamp_now();
    f->creator_version = VHD_CREATOR_VERSION;
    f->creator_os = VHD_CREATOR_OS_WI2K;
    if ((r = vhd_uuid_generate(f->uuid)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot generate a UUID");

    if (!backing) {
        if (!has_size)
            return vdk_error_setf(errp, EINVAL, "image size must be specified");
        return plan_size(pl->size, force, azure, f, errp);
    }
    struct parent_info pi = { 0 };
    if (pl->sub == 1)
        return vdk_error_setf(errp, EINVAL, "a differencing VHD is always dynamic; "
                              "subformat=fixed cannot have a backing file");
    if ((r = read_parent(filename, backing, bfmt, &pi, errp)) < 0)
        return r;
    if (has_size && pl->size != pi.size)
        return vdk_error_setf(errp, EINVAL, "a differencing VHD has its parent's size "
                              "(%" PRIu64 " bytes), not %" PRIu64, pi.size, pl->size);
    /* Same size fields and creator: every reader computes the parent's size. */
    f->cur_size = pi.footer.cur_size;
    f->orig_size = pi.footer.cur_size;
    f->cyls = pi.footer.cyls;
    f->heads = pi.footer.heads;
    f->spt = pi.footer.spt;
    memcpy(f->creator_app, pi.footer.creator_app, 4);
    memcpy(pl->h.parent_uuid, pi.footer.uuid, 16);
    pl->h.parent_timestamp = pi.mtime;
    pl->size = pi.size;
    return 0;
}

int vhd_create_check(const char *filename, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct vhd_plan pl;
    return vhd_plan(filename, opts, &pl, errp);
}

int vhd_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp)
{
    uint8_t *loc_data[3] = { 0 };
    uint8_t *buf = NULL;
    struct vhd_plan pl;
    int r = vhd_plan(filename, opts, &pl, errp);
    if (r < 0)
        return r;
    struct vhd_footer f = pl.f;
    struct vhd_dyn_header h = pl.h;
    const char *backing = pl.backing;
    uint64_t size = pl.size;
    int sub = pl.sub;

    if (sub == 1) {
        f.type = VHD_TYPE_FIXED;
        f.data_offset = UINT64_MAX;
        uint8_t raw[VHD_FOOTER_SIZE];
        vhd_footer_build(&f, raw);
        r = vdk_truncate(file, 0, VDK_PREALLOC_OFF, true, errp);
        if (r == 0 && (r = vdk_pwrite(file, raw, sizeof(raw), f.cur_size, 0)) < 0)
            vdk_error_setf_errno(errp, r, "cannot write the VHD footer");
        return r;
    }

    f.type = backing ? VHD_TYPE_DIFF : VHD_TYPE_DYNAMIC;
    f.data_offset = VHD_FOOTER_SIZE;
    /* Cover both sizes a reader may compute (CHS or current_size). */
    uint64_t cover = vhd_max_u64(f.cur_size, backing ? size : 0);
    uint64_t entries = (cover + VHD_DEFAULT_BLOCK - 1) / VHD_DEFAULT_BLOCK;
    uint64_t bat_bytes = vdk_align_up(entries * 4, VHD_SECTOR);
    h.data_offset = UINT64_MAX;
    h.table_offset = VHD_BAT_OFFSET;
    h.version = 0x00010000;
    h.max_entries = (uint32_t)entries;
    h.block_size = VHD_DEFAULT_BLOCK;
    uint64_t end = VHD_BAT_OFFSET + bat_bytes;
    if (backing && (r = build_locators(filename, backing, &h, loc_data, &end, errp)) < 0)
        goto out;

    uint64_t total = end + VHD_FOOTER_SIZE;
    buf = vdk_blk_alloc(total);
    if (!buf) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    vhd_footer_build(&f, buf);
    vhd_dyn_header_build(&h, buf + VHD_FOOTER_SIZE);
    memset(buf + VHD_BAT_OFFSET, 0xff, bat_bytes);
    for (int i = 0; backing && i < 3; i++)
        memcpy(buf + h.loc[i].offset, loc_data[i], h.loc[i].len);
    memcpy(buf + end, buf, VHD_FOOTER_SIZE);
    r = vdk_truncate(file, 0, VDK_PREALLOC_OFF, true, errp);
    if (r == 0 && (r = vdk_pwrite(file, buf, total, 0, 0)) < 0)
        vdk_error_setf_errno(errp, r, "cannot write the VHD metadata");
out:
    vdk_blk_free(buf);
    for (int i = 0; i < 3; i++)
        free(loc_data[i]);
    return r;
}

/* Does any part of [off, off+len) of src hold data that is not zeros? */
static int range_has_data(struct vdk_node *src, uint64_t off, uint64_t len)
{
    while (len) {
        uint64_t pnum = 0;
        int st = vdk_block_status_above(src, NULL, off, len, &pnum, NULL, NULL, NULL);
        if (st < 0)
            return st;
        if ((st & VDK_BS_DATA) && !(st & VDK_BS_ZERO))
            return 1;
        off += pnum;
        len -= pnum;
    }
    return 0;
}

int vhd_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp)
{
    bool force = false, azure = false;
    int r;
    if ((r = vdk_opts_get_bool(opts, "force_size", false, &force, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "azure_align", false, &azure, errp)) < 0)
        return r;
    int sub = vdk_opts_get_enum(opts, "subformat", subformat_values, 0, errp);
    if (sub < 0)
        return sub;
    if (src) {
        int64_t len = vdk_get_length(src);
        if (len < 0)
            return vdk_error_setf_errno(errp, (int)len, "cannot get the size of the source");
        size = (uint64_t)len;
    }
    struct vhd_footer f = { 0 };
    if ((r = plan_size(size, force, azure, &f, errp)) < 0)
        return r;
    if (sub == 1) {
        out->required = out->fully_allocated = f.cur_size + VHD_FOOTER_SIZE;
        return 0;
    }
    uint64_t entries = (f.cur_size + VHD_DEFAULT_BLOCK - 1) / VHD_DEFAULT_BLOCK;
    uint64_t meta = VHD_BAT_OFFSET + vdk_align_up(entries * 4, VHD_SECTOR) + VHD_FOOTER_SIZE;
    uint64_t span = VHD_SECTOR + VHD_DEFAULT_BLOCK; /* bitmap + data */
    uint64_t used = 0;
    for (uint64_t b = 0; src && b < entries; b++) {
        uint64_t off = b * VHD_DEFAULT_BLOCK;
        if (off >= size)
            break;
        r = range_has_data(src, off, vdk_min_u64(VHD_DEFAULT_BLOCK, size - off));
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot read the allocation of the source");
        used += (uint64_t)r;
    }
    out->fully_allocated = meta + entries * span;
    out->required = meta + used * span;
    return 0;
}

/*
 * Point a differencing image at another VHD parent (rebase).  The new
 * locator data goes where the end footer is, followed by the footer, and
 * is flushed before the dynamic header that references it is rewritten;
 * a crash in between leaves the old parent recorded and the new locator
 * data as unreferenced space.
 */
int vhd_change_backing_file(struct vdk_node *n, const char *backing, const char *fmt,
                            struct vdk_error **errp)
{
    struct vhd_state *s = n->opaque;
    struct parent_info pi = { 0 };
    uint8_t *data[3] = { 0 };
    uint8_t hdr_raw[VHD_DYN_HEADER_SIZE];
    uint8_t *area = NULL;
    char *bf = NULL, *fm = NULL, *pp = NULL;
    int r;
    if (s->footer.type != VHD_TYPE_DIFF)
        return vdk_error_setf(errp, ENOTSUP, "only a differencing VHD records a parent");
    if (!backing || !*backing)
        return vdk_error_setf(errp, ENOTSUP, "a differencing VHD cannot drop its parent; "
                              "convert it to a standalone image instead");
    if ((r = read_parent(n->filename, backing, fmt, &pi, errp)) < 0)
        return r;
    if ((r = vhd_flush(n)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot write back the VHD BAT");
    bf = strdup(backing);
    fm = strdup("vpc");
    pp = strdup(backing);
    if (!bf || !fm || !pp) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out_nolock;
    }

    struct vhd_dyn_header h = s->hdr;
    memset(h.loc, 0, sizeof(h.loc));
    memset(h.parent_name, 0, sizeof(h.parent_name));
    memcpy(h.parent_uuid, pi.footer.uuid, 16);
    h.parent_timestamp = pi.mtime;
    pthread_mutex_lock(&s->lock);
    uint64_t start = s->alloc_off, end = start;
    if ((r = build_locators(n->filename, backing, &h, data, &end, errp)) < 0)
        goto out;
    area = vdk_blk_alloc(end - start + VHD_FOOTER_SIZE);
    if (!area) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < 3; i++)
        memcpy(area + (h.loc[i].offset - start), data[i], h.loc[i].len);
    memcpy(area + (end - start), s->footer_raw, VHD_FOOTER_SIZE);
    vhd_dyn_header_build(&h, hdr_raw);
    r = vdk_pwrite(n->file, area, end - start + VHD_FOOTER_SIZE, start, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0)
        r = vdk_pwrite(n->file, hdr_raw, sizeof(hdr_raw), s->footer.data_offset, 0);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r < 0) {
        r = vdk_error_setf_errno(errp, r, "cannot record the new parent");
        goto out;
    }
    s->hdr = h;
    s->alloc_off = s->used_end = s->meta_end = end;
    s->file_len = vhd_max_u64(s->file_len, end + VHD_FOOTER_SIZE);
    s->footer_from_copy = false;
    free(s->parent_path);
    free(n->backing_file);
    free(n->backing_fmt);
    s->parent_path = pp;
    n->backing_file = bf;
    n->backing_fmt = fm;
    pp = bf = fm = NULL;
out:
    pthread_mutex_unlock(&s->lock);
out_nolock:
    vdk_blk_free(area);
    for (int i = 0; i < 3; i++)
        free(data[i]);
    free(bf);
    free(fm);
    free(pp);
    return r;
}
