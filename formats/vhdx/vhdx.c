/* SPDX-License-Identifier: MIT */
/*
 * The VHDX driver: probing, opening (file identifier, headers, log
 * replay, region table, metadata, BAT, parent of a differencing image),
 * close, info and the driver table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

static int vhdx_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    return len >= 8 && memcmp(buf, "vhdxfile", 8) == 0 ? 100 : 0;
}

static void vhdx_free_state(struct vhdx_state *s)
{
    free(s->bat);
    free(s->bat_dirty);
    s->bat = NULL;
    s->bat_dirty = NULL;
    vhdx_parent_clear(&s->parent);
    vhdx_overlay_free(s);
    if (s->lock_init)
        pthread_mutex_destroy(&s->lock);
    s->lock_init = false;
}

static int read_bat(struct vdk_node *n, struct vhdx_state *s, struct vdk_error **errp)
{
    uint64_t nsec = (s->bat_entries + 511) / 512;
    s->bat = malloc(nsec * VHDX_LOG_SECTOR + 8);
    s->bat_dirty = calloc(nsec + 1, 1);
    if (!s->bat || !s->bat_dirty)
        return vdk_error_setf(errp, ENOMEM, "out of memory for the VHDX BAT");
    if (nsec) {
        int r = vhdx_file_read(n, s->bat_region.offset, nsec * VHDX_LOG_SECTOR, s->bat);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot read the VHDX BAT");
    }
    for (uint64_t i = 0; i < nsec * 512; i++)
        s->bat[i] = fmt_le64((const uint8_t *)&s->bat[i]);
    return 0;
}

/* The data write GUID of the VHDX at `path` (its current header). */
int vhdx_read_data_guid(const char *path, uint8_t guid[16], struct vdk_error **errp)
{
    struct vdk_node *pf = NULL;
    uint8_t *buf = malloc(VHDX_HEADER_SIZE);
    struct vhdx_header h[2];
    bool ok[2] = { false, false };
    int r = buf ? vdk_open_protocol(&pf, path, NULL, VDK_O_SHARE, errp) : -ENOMEM;
    for (int i = 0; r == 0 && i < 2; i++) {
        r = vdk_pread(pf, buf, VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF, 0);
        ok[i] = r == 0 && vhdx_header_parse(buf, &h[i]) == 0;
    }
    if (r == 0 && !ok[0] && !ok[1])
        r = vdk_error_setf(errp, EINVAL, "parent '%s' has no valid VHDX header", path);
    else if (r == 0)
        memcpy(guid, h[!ok[0] || (ok[1] && h[1].seq > h[0].seq)].data_write_guid, 16);
    else if (r == -ENOMEM)
        vdk_error_setf(errp, ENOMEM, "out of memory");
    free(buf);
    if (pf)
        vdk_node_unref(pf);
    return r;
}

/* Locator paths as Linux paths: backslashes become slashes. */
static char *posix_path(const char *p)
{
    char *q = strdup(p);
    for (char *c = q; c && *c; c++)
        if (*c == '\\')
            *c = '/';
    if (q && !strncmp(q, "./", 2))
        memmove(q, q + 2, strlen(q + 2) + 1);
    return q;
}

static int open_parent(struct vdk_node *n, struct vhdx_state *s, unsigned flags,
                       struct vdk_error **errp)
{
    const char *cands[] = { s->parent.relative_path, s->parent.absolute_path,
                            s->parent.volume_path };
    char *found = NULL, *first = NULL;
    for (int i = 0; i < 3 && !found; i++) {
        if (!cands[i])
            continue;
        char *p = posix_path(cands[i]);
        char *full = p ? vdk_path_combine(n->filename, p) : NULL;
        struct stat st;
        if (full && stat(full, &st) == 0)
            found = strdup(p);
        else if (!first && p)
            first = strdup(p);
        free(p);
        free(full);
    }
    if (!found)
        found = first, first = NULL;
    free(first);
    if (!found)
        return vdk_error_setf(errp, ENOENT, "differencing VHDX names no parent path");
    if (!(flags & VDK_O_NO_BACKING)) {
        uint8_t want[16], got[16], want2[16];
        char *full = vdk_path_combine(n->filename, found);
        int r = full ? vhdx_read_data_guid(full, got, errp) : -ENOMEM;
        free(full);
        if (r < 0) {
            free(found);
            return r;
        }
        bool l1 = vhdx_guid_from_str(s->parent.linkage, want) == 0 && !memcmp(want, got, 16);
        bool l2 = s->parent.linkage2 && vhdx_guid_from_str(s->parent.linkage2, want2) == 0 &&
                  !memcmp(want2, got, 16);
        if (!l1 && !l2) {
            char g[39];
            vhdx_guid_to_str(got, g);
            r = vdk_error_setf(errp, EINVAL, "parent '%s' has data write GUID %s but the "
                               "differencing VHDX expects %s", found, g, s->parent.linkage);
            free(found);
            return r;
        }
    }
    n->backing_file = found;
    n->backing_fmt = strdup("vhdx");
    return n->backing_fmt ? 0 : vdk_error_setf(errp, ENOMEM, "out of memory");
}

static int vhdx_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    uint8_t id[8];
    int r;
    (void)opts;
    bool rw = flags & VDK_O_RDWR;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    n->filename);
    if ((uint64_t)flen < VHDX_RT2_OFF + VHDX_RT_SIZE ||
        (r = vdk_pread(n->file, id, 8, 0, 0)) < 0 || memcmp(id, "vhdxfile", 8) != 0)
        return vdk_error_setf(errp, EINVAL, "not a VHDX image (no file identifier)");
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return vdk_error_setf(errp, ENOMEM, "cannot create the VHDX lock");
    s->lock_init = true;
    if ((r = vhdx_headers_read(n, s, (uint64_t)flen, errp)) < 0 ||
        (r = vhdx_log_replay(n, s, rw, (uint64_t)flen, errp)) < 0)
        goto fail;
    if (s->replayed && !rw)
        vdk_warn("'%s' holds a VHDX log that was replayed in memory only; open it "
                 "read-write or run 'check -r all' to apply it", n->filename);
    if ((flen = vdk_get_length(n->file)) < 0) {
        r = vdk_error_setf_errno(errp, (int)flen, "cannot get the file length");
        goto fail;
    }
    if ((r = vhdx_regions_read(n, s, (uint64_t)flen, errp)) < 0 ||
        (r = vhdx_metadata_read(n, s, errp)) < 0 || (r = read_bat(n, s, errp)) < 0)
        goto fail;
    int bad = 0, fixed = 0;
    r = vhdx_check_bat(n, s, (uint64_t)flen, false, false, &bad, &fixed);
    if (r < 0) {
        vdk_error_setf_errno(errp, r, "cannot check the VHDX BAT");
        goto fail;
    }
    if (bad && !(flags & VDK_O_CHECK_REPAIR)) {
        r = vdk_error_setf(errp, EINVAL, "VHDX BAT of '%s' has %d bad entries; 'check' "
                           "names them and 'check -r all' repairs them", n->filename, bad);
        goto fail;
    }
    /* Where new blocks go: after the file and everything it maps. */
    s->file_end = vdk_align_up((uint64_t)flen, VHDX_MiB);
    uint64_t ends[] = { s->bat_region.offset + s->bat_region.length,
                        s->meta_region.offset + s->meta_region.length,
                        s->hdr.log_offset + s->hdr.log_length };
    for (int i = 0; i < 3; i++)
        if (ends[i] > s->file_end)
            s->file_end = vdk_align_up(ends[i], VHDX_MiB);
    for (uint64_t i = 0; i < s->bat_entries; i++) {
        bool sb = i % (s->chunk_ratio + 1) == s->chunk_ratio;
        unsigned st = VHDX_BAT_STATE(s->bat[i]);
        uint64_t len = sb ? VHDX_MiB : s->block_size;
        if (VHDX_BAT_OFFSET(s->bat[i]) && (st == VHDX_BLK_FULLY_PRESENT ||
                                           st == VHDX_BLK_PARTIALLY_PRESENT || !sb) &&
            VHDX_BAT_OFFSET(s->bat[i]) + len > s->file_end)
            s->file_end = VHDX_BAT_OFFSET(s->bat[i]) + len;
    }
    if (s->has_parent && (r = open_parent(n, s, flags, errp)) < 0)
        goto fail;
    s->rw = rw;
    if (rw) {
        /* As qemu: a new file write GUID for every read-write open. */
        if ((r = fmt_uuid_generate(s->hdr.file_write_guid)) < 0 ||
            (r = vhdx_header_update(n, s)) < 0 || (r = vhdx_header_update(n, s)) < 0) {
            vdk_error_setf_errno(errp, r, "cannot update the VHDX header");
            goto fail;
        }
    }
    n->size = s->disk_size;
    n->limits.request_alignment = s->lss;
    n->limits.opt_transfer = s->block_size;
    n->limits.pwrite_zeroes_alignment = s->lss;
    n->limits.discard_alignment = s->block_size;
    if (!s->has_parent)
        n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    return 0;
fail:
    vhdx_free_state(s);
    return r;
}

static void vhdx_close(struct vdk_node *n)
{
    struct vhdx_state *s = n->opaque;
    if (s->rw && s->bat) {
        pthread_mutex_lock(&s->lock);
        if (vhdx_bat_sync(n, s) < 0 || vhdx_log_close(n, s) < 0)
            vdk_warn("could not write the metadata of '%s'", n->filename);
        pthread_mutex_unlock(&s->lock);
    }
    vhdx_free_state(s);
}

/* Read-only <-> read-write (commit into this image, say). */
static int vhdx_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    bool rw = flags & VDK_O_RDWR;
    int r = 0;
    if (rw == s->rw)
        return 0;
    pthread_mutex_lock(&s->lock);
    if (rw && s->n_ovl) {
        r = vdk_error_setf(errp, EBUSY, "'%s' has a VHDX log replayed in memory only; open it "
                           "read-write to replay it first", n->filename);
    } else if (rw) {
        if ((r = fmt_uuid_generate(s->hdr.file_write_guid)) == 0)
            r = vhdx_header_update(n, s);
        if (r < 0)
            vdk_error_setf_errno(errp, r, "cannot update the VHDX header");
        else
            s->rw = true;
    } else {
        if ((r = vhdx_bat_sync(n, s)) == 0)
            r = vhdx_log_close(n, s);
        if (r < 0)
            vdk_error_setf_errno(errp, r, "cannot write the VHDX metadata");
        else
            s->rw = false;
        s->data_guid_done = false;
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

static int vhdx_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                         struct vdk_error **errp)
{
    struct vhdx_state *s = n->opaque;
    (void)errp;
    /* As qemu-img: the block size as cluster size, a clean dirty flag. */
    info->cluster_size = s->block_size;
    info->has_dirty_flag = true;
    return 0;
}

const struct vdk_driver vdk_driver_vhdx = {
    .name = "vhdx",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct vhdx_state),
    .create_opts = vhdx_create_opts,
    .supports_backing = true,
    .relink_after_commit = true,
    .probe = vhdx_probe,
    .open = vhdx_open,
    .close = vhdx_close,
    .create = vhdx_create,
    .pread = vhdx_pread,
    .pwrite = vhdx_pwrite,
    .pwrite_zeroes = vhdx_pwrite_zeroes,
    .discard = vhdx_discard,
    .flush = vhdx_flush,
    .reopen = vhdx_reopen,
    .block_status = vhdx_block_status,
    .get_info = vhdx_get_info,
    .check = vhdx_check,
    .measure = vhdx_measure,
    .change_backing_file = vhdx_change_backing_file,
    .make_empty = vhdx_make_empty,
};
