/* SPDX-License-Identifier: MIT */
/*
 * The Parallels driver: probing, the header (qemu 7.2's rules and
 * messages), opening with a bounded BAT, the in-use flag, close, info and
 * the driver table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/parallels/parallels.h"

static const char *const prealloc_mode_values[] = { "falloc", "truncate", NULL };

/* qemu's runtime options; accepted for command-line compatibility.  vdk
   does not preallocate (close cuts the file to its data in both). */
static const struct vdk_opt_desc prl_open_opts[] = {
    { "prealloc-mode", VDK_OPT_ENUM, "Preallocation mode on image expansion "
      "(accepted, no effect in vdk)", "falloc", prealloc_mode_values },
    { "prealloc-size", VDK_OPT_SIZE, "Preallocation size on image expansion "
      "(accepted, no effect in vdk)", "128M", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int prl_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    if (len < PRL_HEADER_SIZE)
        return 0;
    if ((memcmp(buf, PRL_MAGIC, 16) == 0 || memcmp(buf, PRL_MAGIC2, 16) == 0) &&
        fmt_le32(buf + PRL_OFF_VERSION) == PRL_VERSION)
        return 100;
    return 0;
}

int prl_write_header(struct vdk_node *n)
{
    struct prl_state *s = n->opaque;
    int r = vdk_pwrite(n->file, s->header, PRL_HEADER_SIZE, 0, 0);
    return r < 0 ? r : vdk_flush(n->file);
}

static void prl_free_state(struct prl_state *s)
{
    free(s->bat);
    s->bat = NULL;
    if (s->lock_init)
        pthread_mutex_destroy(&s->lock);
    s->lock_init = false;
}

static int parse_header(struct vdk_node *n, struct prl_state *s, uint64_t flen,
                        struct vdk_error **errp)
{
    const uint8_t *h = s->header;
    if (fmt_le32(h + PRL_OFF_VERSION) != PRL_VERSION)
        return vdk_error_setf(errp, EINVAL, "Image not in Parallels format");
    uint64_t nb_sectors = fmt_le64(h + PRL_OFF_NB_SECTORS);
    if (memcmp(h, PRL_MAGIC, 16) == 0) {
        nb_sectors &= 0xffffffffu;
    } else if (memcmp(h, PRL_MAGIC2, 16) == 0) {
        s->ext_magic = true;
    } else {
        return vdk_error_setf(errp, EINVAL, "Image not in Parallels format");
    }
    s->tracks = fmt_le32(h + PRL_OFF_TRACKS);
    if (s->tracks == 0)
        return vdk_error_setf(errp, EINVAL, "Invalid image: Zero sectors per track");
    if (s->tracks > PRL_MAX_TRACKS)
        return vdk_error_setf(errp, EFBIG, "Invalid image: Too big cluster");
    s->off_multiplier = s->ext_magic ? s->tracks : 1;
    s->cluster_size = (uint64_t)s->tracks * PRL_SECTOR;
    s->bat_entries = fmt_le32(h + PRL_OFF_BAT_ENTRIES);
    if (s->bat_entries > PRL_MAX_BAT)
        return vdk_error_setf(errp, EFBIG, "Catalog too large");
    s->meta_end = PRL_HEADER_SIZE + (uint64_t)s->bat_entries * 4;
    if (s->meta_end > flen)
        return vdk_error_setf(errp, EINVAL, "Parallels BAT of %" PRIu32 " entries is beyond "
                              "the end of the file", s->bat_entries);
    /* Bound the virtual size as qemu's create does: under 2^32 clusters. */
    if (nb_sectors > ((uint64_t)1 << 32) * s->tracks || nb_sectors > (INT64_MAX >> 9))
        return vdk_error_setf(errp, EFBIG, "Parallels image of %" PRIu64 " sectors is too "
                              "large for its cluster size", nb_sectors);
    n->size = nb_sectors * PRL_SECTOR;
    (void)n;
    return 0;
}

static int prl_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                    struct vdk_error **errp)
{
    struct prl_state *s = n->opaque;
    uint64_t psize;
    int r = vdk_opts_get_enum(opts, "prealloc-mode", prealloc_mode_values, 0, errp);
    if (r < 0 || (r = vdk_opts_get_size(opts, "prealloc-size", 0, &psize, errp)) < 0)
        return r;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    n->filename);
    if ((uint64_t)flen < PRL_HEADER_SIZE)
        return vdk_error_setf(errp, EINVAL, "Image not in Parallels format");
    if ((r = vdk_pread(n->file, s->header, PRL_HEADER_SIZE, 0, 0)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the Parallels header");
    if ((r = parse_header(n, s, (uint64_t)flen, errp)) < 0)
        return r;
    s->bat = malloc((size_t)s->bat_entries * 4 + 4);
    if (!s->bat)
        return vdk_error_setf(errp, ENOMEM, "out of memory for the Parallels BAT");
    if (s->bat_entries &&
        (r = vdk_pread(n->file, s->bat, (uint64_t)s->bat_entries * 4, PRL_HEADER_SIZE, 0)) < 0) {
        prl_free_state(s);
        return vdk_error_setf_errno(errp, r, "cannot read the Parallels BAT");
    }
    for (uint32_t i = 0; i < s->bat_entries; i++)
        s->bat[i] = fmt_le32((const uint8_t *)&s->bat[i]);

    /* The next cluster goes after the data offset and every cluster. */
    uint64_t meta_sectors = (s->meta_end + PRL_SECTOR - 1) / PRL_SECTOR;
    s->data_end = fmt_le32(s->header + PRL_OFF_DATA_OFF);
    if (s->data_end < meta_sectors)
        s->data_end = meta_sectors;
    for (uint32_t i = 0; i < s->bat_entries; i++) {
        uint64_t sec = prl_entry_sector(s, s->bat[i]);
        if (s->bat[i] && sec + s->tracks > s->data_end)
            s->data_end = sec + s->tracks;
    }
    /* New clusters must be addressable by a BAT entry. */
    s->data_end = vdk_align_up(s->data_end, s->off_multiplier);

    s->unclean = fmt_le32(s->header + PRL_OFF_INUSE) == PRL_INUSE_MAGIC;
    if (s->unclean && (flags & VDK_O_RDWR) && !(flags & VDK_O_CHECK_REPAIR)) {
        prl_free_state(s);
        return vdk_error_setf(errp, EACCES, "parallels: Image was not closed correctly; "
                              "cannot be opened read/write");
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        prl_free_state(s);
        return vdk_error_setf(errp, ENOMEM, "cannot create the Parallels lock");
    }
    s->lock_init = true;
    s->dirty_lo = UINT32_MAX;
    if (flags & VDK_O_RDWR) {
        /* As qemu: in use while open for writing; the format extension
           (dirty bitmaps) is dropped because writes would stale it. */
        fmt_put_le32(s->header + PRL_OFF_INUSE, PRL_INUSE_MAGIC);
        fmt_put_le64(s->header + PRL_OFF_EXT_OFF, 0);
        if ((r = prl_write_header(n)) < 0) {
            prl_free_state(s);
            return vdk_error_setf_errno(errp, r, "cannot mark the Parallels image in use");
        }
    }
    n->limits.request_alignment = PRL_SECTOR;
    n->limits.opt_transfer = (uint32_t)vdk_min_u64(s->cluster_size, 1u << 30);
    n->limits.pwrite_zeroes_alignment = PRL_SECTOR;
    return 0;
}

/* Cut the file after its last cluster, as qemu does on close, but never
   grow it: a data offset or BAT entry far past the end (a damaged image)
   would otherwise make the file that large. */
static int cut_after_data(struct vdk_node *n)
{
    struct prl_state *s = n->opaque;
    int64_t len = vdk_get_length(n->file);
    if (len < 0)
        return (int)len;
    if (s->data_end * PRL_SECTOR >= (uint64_t)len)
        return 0;
    return vdk_truncate(n->file, s->data_end * PRL_SECTOR, VDK_PREALLOC_OFF, true, NULL);
}

static void prl_close(struct vdk_node *n)
{
    struct prl_state *s = n->opaque;
    if (!n->read_only && s->bat) {
        if (prl_flush(n) < 0)
            vdk_warn("could not write the BAT of '%s'", n->filename);
        /* A check that found the image unclean without repairing it
           leaves the flag set. */
        if (!s->unclean) {
            fmt_put_le32(s->header + PRL_OFF_INUSE, 0);
            if (prl_write_header(n) < 0)
                vdk_warn("could not clear the in-use flag of '%s'", n->filename);
            else if (cut_after_data(n) < 0)
                vdk_warn("could not cut '%s' after its last cluster", n->filename);
        }
    }
    prl_free_state(s);
}

/* Read-only <-> read-write: the in-use flag follows, as at open/close. */
static int prl_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    struct prl_state *s = n->opaque;
    int r;
    if (flags & VDK_O_RDWR) {
        if (s->unclean)
            return vdk_error_setf(errp, EACCES, "parallels: Image was not closed correctly; "
                                  "cannot be opened read/write");
        fmt_put_le32(s->header + PRL_OFF_INUSE, PRL_INUSE_MAGIC);
        fmt_put_le64(s->header + PRL_OFF_EXT_OFF, 0);
    } else {
        if ((r = prl_flush(n)) < 0)
            return vdk_error_setf_errno(errp, r, "cannot write the Parallels BAT");
        fmt_put_le32(s->header + PRL_OFF_INUSE, 0);
    }
    r = prl_write_header(n);
    return r < 0 ? vdk_error_setf_errno(errp, r, "cannot write the Parallels header") : 0;
}

static int prl_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                        struct vdk_error **errp)
{
    /* qemu-img prints neither a cluster size nor a dirty flag. */
    (void)n;
    (void)info;
    (void)errp;
    return 0;
}

const struct vdk_driver vdk_driver_parallels = {
    .name = "parallels",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct prl_state),
    .open_opts = prl_open_opts,
    .create_opts = prl_create_opts,
    .probe = prl_probe,
    .open = prl_open,
    .close = prl_close,
    .create = prl_create,
    .pread = prl_pread,
    .pwrite = prl_pwrite,
    .pwrite_zeroes = prl_pwrite_zeroes,
    .flush = prl_flush,
    .reopen = prl_reopen,
    .block_status = prl_block_status,
    .get_info = prl_get_info,
    .check = prl_check,
    .measure = prl_measure,
};
