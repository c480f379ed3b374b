/* SPDX-License-Identifier: MIT */
/*
 * The VHD driver ("vpc"): probing, opening (footer, size rules, dynamic
 * metadata, parent of a differencing image), info and the driver table.
 *
 * The parent of a differencing image is opened by the generic layer
 * (n->backing_file, format "vpc"), which keeps its loop and depth checks.
 * Open checks beforehand that the file the locators name is a VHD whose
 * UUID is the one the child records, so a wrong parent is refused before
 * any data is read through it.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vhd/vhd.h"

static const char *const size_calc_values[] = { "none", "chs", "current_size", NULL };

static const struct vdk_opt_desc vhd_open_opts[] = {
    { "force_size_calc", VDK_OPT_ENUM,
      "Take the virtual size from the CHS geometry (chs) or from the footer's "
      "current size (current_size) instead of deciding by the creator application",
      "none", size_calc_values },
    { NULL, 0, NULL, NULL, NULL },
};

static int vhd_probe(const uint8_t *buf, size_t len, const char *filename)
{
    /* Dynamic and differencing images start with the footer copy; fixed
       ones have it only at the end (vhd_probe_tail). */
    return len >= 8 && memcmp(buf, "conectix", 8) == 0 ? 100 : 0;
}

/*
 * A footer with a valid checksum at the end.  qemu-img 7.2 probes fixed
 * VHDs as raw and so shows the footer as the disk's last sector; vdk
 * opens them as VHD.  Below the head magics' 100 so that a format with a
 * header never loses to a stray footer.
 */
static int vhd_probe_tail(const uint8_t *tail, size_t len, uint64_t file_len)
{
    struct vhd_footer f;
    if (len < VHD_FOOTER_SIZE || file_len < VHD_FOOTER_SIZE)
        return 0;
    return vhd_footer_parse(tail + len - VHD_FOOTER_SIZE, &f, NULL) == 0 ? 50 : 0;
}

static void vhd_free_state(struct vhd_state *s)
{
    free(s->bat);
    free(s->bm_full);
    free(s->parent_path);
    s->bat = NULL;
    s->bm_full = NULL;
    s->parent_path = NULL;
    if (s->lock_init)
        pthread_mutex_destroy(&s->lock);
    s->lock_init = false;
}

/* The parent must be a VHD whose UUID the child records. */
static int check_parent(struct vdk_node *n, struct vhd_state *s, struct vdk_error **errp)
{
    char *full = vdk_path_combine(n->filename, s->parent_path);
    struct vdk_node *pf = NULL;
    struct vdk_error *err = NULL;
    struct vhd_footer pfoot;
    uint8_t raw[VHD_FOOTER_SIZE];
    bool from_copy;
    int r;
    if (!full)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    r = vdk_open_protocol(&pf, full, NULL, VDK_O_SHARE, &err);
    if (r < 0) {
        vdk_error_setf(errp, r, "cannot open the parent '%s' of this differencing VHD: %s",
                       s->parent_path, vdk_error_msg(err));
        goto out;
    }
    r = vhd_read_footer(pf, &pfoot, raw, &from_copy, &err);
    if (r < 0) {
        vdk_error_setf(errp, r, "parent '%s' is not a VHD image: %s", s->parent_path,
                       vdk_error_msg(err));
        goto out;
    }
    if (memcmp(pfoot.uuid, s->hdr.parent_uuid, 16) != 0) {
        char want[37], got[37];
        vhd_uuid_format(s->hdr.parent_uuid, want);
        vhd_uuid_format(pfoot.uuid, got);
        r = vdk_error_setf(errp, EINVAL, "parent '%s' has UUID %s but the differencing "
                           "VHD expects %s", s->parent_path, got, want);
    }
out:
    vdk_error_free(err);
    if (pf)
        vdk_node_unref(pf);
    free(full);
    return r;
}

/*
 * A dynamic or differencing image whose footer copy at offset 0 differs
 * from the valid end footer: which one is right cannot be told (qemu reads
 * the copy, the specification and vdk the end footer), so reads go on
 * with a warning while writes, which would build on one of them, are
 * refused until check -r all rewrites the copy.  qemu-img neither checks
 * nor refuses; its next block allocation overwrites the end footer with
 * the copy.
 */
static int footer_copy_compare(struct vdk_node *n, struct vhd_state *s, unsigned flags,
                               struct vdk_error **errp)
{
    uint8_t copy[VHD_FOOTER_SIZE];
    int r = vdk_pread(n->file, copy, sizeof(copy), 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the VHD footer copy");
    s->copy_differs = memcmp(copy, s->footer_raw, VHD_FOOTER_SIZE) != 0;
    if (!s->copy_differs)
        return 0;
    if ((flags & VDK_O_RDWR) && !(flags & VDK_O_CHECK_REPAIR))
        return vdk_error_setf(errp, EINVAL, "the VHD footer copy at offset 0 of '%s' differs "
                              "from the footer at its end (read-only opens only; "
                              "'check -r all' rewrites the copy)", n->filename);
    vdk_warn("the VHD footer copy at offset 0 of '%s' differs from the footer at its end; "
             "using the end footer", n->filename);
    return 0;
}

static int vhd_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                    struct vdk_error **errp)
{
    struct vhd_state *s = n->opaque;
    int r;
    int calc = vdk_opts_get_enum(opts, "force_size_calc", size_calc_values, 0, errp);
    if (calc < 0)
        return calc;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    n->filename);
    s->file_len = (uint64_t)flen;
    r = vhd_read_footer(n->file, &s->footer, s->footer_raw, &s->footer_from_copy, errp);
    if (r < 0)
        return r;
    uint32_t type = s->footer.type;
    if (type != VHD_TYPE_FIXED && type != VHD_TYPE_DYNAMIC && type != VHD_TYPE_DIFF)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VHD disk type %" PRIu32, type);
    if (s->footer_from_copy)
        vdk_warn("the VHD footer at the end of '%s' is damaged; using its copy at "
                 "offset 0", n->filename);
    if (type != VHD_TYPE_FIXED && !s->footer_from_copy &&
        (r = footer_copy_compare(n, s, flags, errp)) < 0)
        return r;

    uint64_t size = vhd_footer_virtual_size(&s->footer, (enum vhd_size_calc)calc);
    if (size > VHD_MAX_SIZE)
        return vdk_error_setf(errp, EFBIG, "VHD virtual size %" PRIu64 " exceeds the "
                              "format's maximum of 2040 GiB", size);
    n->size = size;
    n->limits.request_alignment = VHD_SECTOR;
    n->limits.pwrite_zeroes_alignment = VHD_SECTOR;
    n->limits.discard_alignment = VHD_SECTOR;

    if (type == VHD_TYPE_FIXED) {
        if (size > s->file_len - VHD_FOOTER_SIZE)
            return vdk_error_setf(errp, EINVAL, "fixed VHD holds %" PRIu64 " data bytes, "
                                  "less than its virtual size of %" PRIu64,
                                  s->file_len - VHD_FOOTER_SIZE, size);
        n->supported_zero_flags = n->file->supported_zero_flags & VDK_REQ_MAY_UNMAP;
        n->limits.opt_transfer = n->file->limits.opt_transfer;
        n->limits.request_alignment = vhd_max_u64(VHD_SECTOR,
                                                  n->file->limits.request_alignment);
        return 0;
    }

    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return vdk_error_setf(errp, ENOMEM, "cannot create the VHD lock");
    s->lock_init = true;
    r = vhd_dynamic_open(n, s, errp);
    if (r < 0)
        goto fail;
    n->limits.opt_transfer = s->block_size;
    n->cluster_size = s->block_size;
    if (type == VHD_TYPE_DYNAMIC)
        n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    if (type == VHD_TYPE_DIFF) {
        r = vhd_parent_resolve(n, s, &s->parent_path, errp);
        if (r < 0)
            goto fail;
        if (!(flags & VDK_O_NO_BACKING) && (r = check_parent(n, s, errp)) < 0)
            goto fail;
        n->backing_file = strdup(s->parent_path);
        n->backing_fmt = strdup("vpc");
        if (!n->backing_file || !n->backing_fmt) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
    }
    return 0;
fail:
    vhd_free_state(s);
    return r;
}

static void vhd_close(struct vdk_node *n)
{
    struct vhd_state *s = n->opaque;
    /* Unsafe caching or no flush on close still gets a consistent BAT. */
    if (s->bat && !n->read_only && vhd_flush(n) < 0)
        vdk_warn("could not write the block table of '%s'", n->filename);
    vhd_free_state(s);
}

/* Creator fields hold four bytes, often ASCII with padding. */
static json_object *fourcc_json(const uint8_t *b)
{
    char str[5];
    int k = 0;
    for (int i = 0; i < 4; i++)
        if (b[i] >= 0x20 && b[i] < 0x7f)
            str[k++] = (char)b[i];
    str[k] = 0;
    return json_object_new_string(str);
}

static int vhd_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                        struct vdk_error **errp)
{
    struct vhd_state *s = n->opaque;
    const struct vhd_footer *f = &s->footer;
    char uuid[37];
    uint8_t os[4];
    info->has_dirty_flag = true; /* qemu-img prints "dirty-flag": false */
    if (f->type != VHD_TYPE_FIXED)
        info->cluster_size = s->block_size;
    /* qemu-img 7.2 prints no format-specific block for fixed and dynamic
       images, so neither does vdk.  It reads a differencing image as if
       it were dynamic and had no parent; there vdk's output differs anyway
       (backing file), and the block names the parent's UUID. */
    if (f->type != VHD_TYPE_DIFF)
        return 0;
    json_object *data = json_object_new_object();
    json_object *top = json_object_new_object();
    if (!data || !top) {
        json_object_put(data);
        json_object_put(top);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    vhd_put_be32(os, f->creator_os);
    json_object_object_add(data, "subformat", json_object_new_string(vhd_type_name(f->type)));
    json_object_object_add(data, "cylinders", json_object_new_int(f->cyls));
    json_object_object_add(data, "heads", json_object_new_int(f->heads));
    json_object_object_add(data, "sectors-per-track", json_object_new_int(f->spt));
    json_object_object_add(data, "current-size", json_object_new_int64((int64_t)f->cur_size));
    json_object_object_add(data, "creator-app", fourcc_json(f->creator_app));
    char ver[24];
    snprintf(ver, sizeof(ver), "%u.%u", f->creator_version >> 16, f->creator_version & 0xffff);
    json_object_object_add(data, "creator-version", json_object_new_string(ver));
    json_object_object_add(data, "creator-os", fourcc_json(os));
    vhd_uuid_format(f->uuid, uuid);
    json_object_object_add(data, "uuid", json_object_new_string(uuid));
    if (f->type != VHD_TYPE_FIXED)
        json_object_object_add(data, "block-size", json_object_new_int64(s->block_size));
    if (f->type == VHD_TYPE_DIFF) {
        vhd_uuid_format(s->hdr.parent_uuid, uuid);
        json_object_object_add(data, "parent-uuid", json_object_new_string(uuid));
        json_object_object_add(data, "parent", json_object_new_string(s->parent_path));
    }
    if (s->footer_from_copy)
        json_object_object_add(data, "footer-damaged", json_object_new_boolean(1));
    json_object_object_add(top, "type", json_object_new_string("vpc"));
    json_object_object_add(top, "data", data);
    info->format_specific = top;
    return 0;
}

const struct vdk_driver vdk_driver_vpc = {
    .name = "vpc",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct vhd_state),
    .open_opts = vhd_open_opts,
    .create_opts = vhd_create_opts,
    .supports_backing = true,
    .probe = vhd_probe,
    .probe_tail = vhd_probe_tail,
    .open = vhd_open,
    .close = vhd_close,
    .create_check = vhd_create_check,
    .create = vhd_create,
    .pread = vhd_pread,
    .pwrite = vhd_pwrite,
    .pwrite_zeroes = vhd_pwrite_zeroes,
    .discard = vhd_discard,
    .flush = vhd_flush,
    .block_status = vhd_block_status,
    .make_empty = vhd_make_empty,
    .change_backing_file = vhd_change_backing_file,
    .get_info = vhd_get_info,
    .check = vhd_check,
    .measure = vhd_measure,
};
