/* SPDX-License-Identifier: MIT */
/*
 * Creating Parallels images as qemu-img 7.2 does: the "WithouFreSpacExt"
 * magic, version 2, 16 heads and 32 sectors a cylinder for the (unused)
 * geometry, the size and cluster size rounded up to sectors, the BAT
 * right after the 64-byte header, and data from the next cluster
 * boundary on.  The file ends where the data starts.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/parallels/parallels.h"

const struct vdk_opt_desc prl_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "cluster_size", VDK_OPT_SIZE, "Parallels image cluster size", "1M", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

struct prl_plan {
    uint64_t size, cluster;
    uint32_t bat_entries;
    uint64_t data_off;        /* bytes */
};

static int plan(struct vdk_opts *opts, uint64_t size, struct prl_plan *p,
                struct vdk_error **errp)
{
    uint64_t cl;
    int r = vdk_opts_get_size(opts, "cluster_size", PRL_DEFAULT_CLUSTER, &cl, errp);
    if (r < 0)
        return r;
    if (cl > (1ull << 40))
        return vdk_error_setf(errp, EINVAL, "Cluster size is too large");
    p->cluster = vdk_align_up(cl, PRL_SECTOR);
    p->size = vdk_align_up(size, PRL_SECTOR);
    if (p->cluster == 0)
        return vdk_error_setf(errp, EINVAL, "Cluster size must be a multiple of 512 bytes "
                              "and not 0");
    if (p->cluster / PRL_SECTOR > PRL_MAX_TRACKS)
        return vdk_error_setf(errp, EINVAL, "Cluster size is too large");
    if (size > UINT64_MAX - PRL_SECTOR || p->size / p->cluster >= PRL_MAX_BAT)
        return vdk_error_setf(errp, E2BIG, "Image size is too large for this cluster size");
    p->bat_entries = (uint32_t)((p->size + p->cluster - 1) / p->cluster);
    uint64_t bat_end = vdk_align_up(PRL_HEADER_SIZE + (uint64_t)p->bat_entries * 4, PRL_SECTOR);
    p->data_off = (bat_end + p->cluster - 1) / p->cluster * p->cluster;
    return 0;
}

int prl_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
               struct vdk_error **errp)
{
    uint64_t size = 0;
    struct prl_plan p;
    (void)filename;
    int r = vdk_opts_get_size(opts, "size", 0, &size, errp);
    if (r < 0 || (r = plan(opts, size, &p, errp)) < 0)
        return r;
    uint8_t h[PRL_HEADER_SIZE] = { 0 };
    memcpy(h, PRL_MAGIC2, 16);
    fmt_put_le32(h + PRL_OFF_VERSION, PRL_VERSION);
    fmt_put_le32(h + PRL_OFF_HEADS, PRL_HEADS);
    fmt_put_le32(h + PRL_OFF_CYLS, (uint32_t)(p.size / PRL_SECTOR / PRL_HEADS / PRL_SEC_IN_CYL));
    fmt_put_le32(h + PRL_OFF_TRACKS, (uint32_t)(p.cluster / PRL_SECTOR));
    fmt_put_le32(h + PRL_OFF_BAT_ENTRIES, p.bat_entries);
    fmt_put_le64(h + PRL_OFF_NB_SECTORS, p.size / PRL_SECTOR);
    fmt_put_le32(h + PRL_OFF_DATA_OFF, (uint32_t)(p.data_off / PRL_SECTOR));
    r = vdk_pwrite(file, h, sizeof(h), 0, 0);
    if (r == 0)
        r = vdk_pwrite_zeroes(file, PRL_HEADER_SIZE, p.data_off - PRL_HEADER_SIZE, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot write the Parallels header");
    return 0;
}

int prl_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                struct vdk_measure *out, struct vdk_error **errp)
{
    struct prl_plan p;
    int r;
    if ((r = fmt_measure_size(src, &size, errp)) < 0)
        return r;
    if ((r = plan(opts, size, &p, errp)) < 0)
        return r;
    uint64_t used = 0;
    if (src && (r = fmt_count_data_blocks(src, size, p.cluster, &used)) < 0)
        return vdk_error_setf_errno(errp, r, "cannot read the allocation of the source");
    out->fully_allocated = p.data_off + (uint64_t)p.bat_entries * p.cluster;
    out->required = p.data_off + used * p.cluster;
    return 0;
}
