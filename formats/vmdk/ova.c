/* SPDX-License-Identifier: MIT */
/*
 * The "ova" driver: one disk of an OVA, read in place.
 *
 *   ova node ── file: the .ova (tar)
 *      └ inner: vmdk node ── file: raw window (offset/size into the tar)
 *
 * Options: disk=N picks the N-th disk of the OVF's DiskSection (default
 * 1); verify=on checks the manifest's digests first.  Read-only.  Only
 * monolithic VMDK disks (streamOptimized, as OVAs carry them, or
 * monolithicSparse) are opened: a descriptor file inside the archive
 * would name extent files outside it.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/ova.h"
#include "formats/vmdk/vmdk.h"

struct ova_state {
    struct tar_index idx;
    struct ovf_info ovf;
    const char *ovf_name, *mf_name;
    uint64_t disk;           /* 1-based */
    struct vdk_node *inner;  /* vmdk over the window */
};

static const struct vdk_opt_desc ova_open_opts[] = {
    { "disk", VDK_OPT_NUMBER, "Which disk of the OVF's disk section to open (1 = first)",
      "1", NULL },
    { "verify", VDK_OPT_BOOL, "Check the manifest's SHA-1/SHA-256 digests before opening",
      "off", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static bool ends_with(const char *s, const char *suf)
{
    size_t l = strlen(s), k = strlen(suf);
    return l >= k && strcmp(s + l - k, suf) == 0;
}

static int ova_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    char name[OVA_MAX_NAME], type;
    uint64_t size;
    if (len < 512 || memcmp(buf + 257, "ustar", 5) != 0)
        return 0;
    if (tar_header_parse(buf, name, &type, &size) != 0)
        return 0;
    /* The OVF descriptor comes first; a pax header before it names it
       (GNU tar calls the header itself "./PaxHeaders/NAME"). */
    if (type == 'x' && ends_with(name, ".ovf"))
        return 100;
    if (type == 'x' && size < len - 512 && size < 1024) {
        char rec[1025];
        memcpy(rec, buf + 512, size);
        rec[size] = 0;
        for (char *p = strstr(rec, " path="); p; p = strstr(p + 1, " path=")) {
            char *nl = strchr(p, '\n');
            if (nl && nl - p > 10 && memcmp(nl - 4, ".ovf", 4) == 0)
                return 100;
        }
        return 0;
    }
    return ends_with(name, ".ovf") ? 100 : 0;
}

/* Read a whole archive member of at most cap bytes, NUL-terminated. */
static char *read_member(struct vdk_node *file, const struct tar_entry *e, size_t cap,
                         struct vdk_error **errp)
{
    if (e->size > cap) {
        vdk_error_setf(errp, EFBIG, "'%s' in the OVA is larger than %zu bytes", e->name, cap);
        return NULL;
    }
    char *buf = malloc(e->size + 1);
    if (!buf) {
        vdk_error_setf(errp, ENOMEM, "out of memory");
        return NULL;
    }
    int r = e->size ? vdk_pread(file, buf, e->size, e->offset, 0) : 0;
    if (r < 0) {
        free(buf);
        vdk_error_setf_errno(errp, r, "cannot read '%s' from the OVA", e->name);
        return NULL;
    }
    buf[e->size] = 0;
    return buf;
}

/* A format node of drv over an existing child, opened read-only. */
static int open_over(struct vdk_node **out, const struct vdk_driver *drv, const char *name,
                     struct vdk_node *file, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct vdk_node *x = vdk_node_new_internal(drv, name);
    if (!x)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    vdk_node_ref(file);
    x->file = file;
    x->open_flags = flags;
    x->read_only = true;
    x->probed = true; /* never open files named inside the archive */
    int r = drv->open(x, opts, flags, errp);
    if (r < 0) {
        vdk_node_free_internal(x);
        return r;
    }
    *out = x;
    return 0;
}

static void ova_free(struct ova_state *s)
{
    if (s->inner)
        vdk_node_unref(s->inner);
    s->inner = NULL;
    tar_index_free(&s->idx);
    ovf_info_free(&s->ovf);
}

static int open_disk(struct vdk_node *n, struct ova_state *s, unsigned flags,
                     struct vdk_error **errp)
{
    const struct ovf_disk *d = &s->ovf.disks[s->disk - 1];
    if (!d->href)
        return vdk_error_setf(errp, EINVAL, "OVF disk %" PRIu64 " names no file", s->disk);
    const struct tar_entry *e = tar_find(&s->idx, d->href);
    if (!e)
        return vdk_error_setf(errp, ENOENT, "OVF disk %" PRIu64 " is '%s', which the OVA "
                              "does not hold", s->disk, d->href);
    uint8_t magic[4] = { 0 };
    int r = e->size >= 4 ? vdk_pread(n->file, magic, 4, e->offset, 0) : 0;
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read '%s'", d->href);
    if (memcmp(magic, "KDMV", 4) != 0 && memcmp(magic, "COWD", 4) != 0)
        return vdk_error_setf(errp, ENOTSUP, "disk '%s' in the OVA is not a monolithic VMDK",
                              d->href);
    struct vdk_opts *wo = vdk_opts_new();
    char off[32], size[32];
    snprintf(off, sizeof(off), "%" PRIu64, e->offset);
    snprintf(size, sizeof(size), "%" PRIu64, e->size);
    if (!wo || vdk_opts_set(wo, "offset", off) < 0 || vdk_opts_set(wo, "size", size) < 0) {
        vdk_opts_free(wo);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    char *name = NULL;
    if (asprintf(&name, "%s/%s", n->filename, d->href) < 0) {
        vdk_opts_free(wo);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    unsigned f = flags & ~(unsigned)VDK_O_RDWR;
    struct vdk_node *win = NULL;
    r = open_over(&win, &vdk_driver_raw, name, n->file, wo, f, errp);
    vdk_opts_free(wo);
    if (r == 0) {
        struct vdk_opts *vo = vdk_opts_new();
        r = vo ? open_over(&s->inner, &vdk_driver_vmdk, name, win, vo, f, errp)
               : vdk_error_setf(errp, ENOMEM, "out of memory");
        vdk_opts_free(vo);
        vdk_node_unref(win);
        if (r < 0)
            vdk_error_prepend(errp, "disk '%s' of the OVA", d->href);
    }
    free(name);
    return r;
}

static int ova_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                    struct vdk_error **errp)
{
    struct ova_state *s = n->opaque;
    bool verify = false;
    int r;
    if ((r = vdk_opts_get_uint(opts, "disk", 1, &s->disk, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "verify", false, &verify, errp)) < 0)
        return r;
    if (flags & VDK_O_RDWR)
        return vdk_error_setf(errp, EROFS, "OVA images are read-only; convert the disk to "
                              "write it");
    int64_t len = vdk_get_length(n->file);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the length of '%s'",
                                    n->filename);
    if ((r = tar_index_read(n->file, (uint64_t)len, &s->idx, errp)) < 0)
        goto fail;
    for (size_t i = 0; i < s->idx.n; i++) {
        if (!s->ovf_name && ends_with(s->idx.e[i].name, ".ovf"))
            s->ovf_name = s->idx.e[i].name;
        if (!s->mf_name && ends_with(s->idx.e[i].name, ".mf"))
            s->mf_name = s->idx.e[i].name;
    }
    if (!s->ovf_name) {
        r = vdk_error_setf(errp, EINVAL, "'%s' holds no OVF descriptor", n->filename);
        goto fail;
    }
    char *xml = read_member(n->file, tar_find(&s->idx, s->ovf_name), OVA_MAX_OVF, errp);
    if (!xml) {
        r = -EINVAL;
        goto fail;
    }
    r = ovf_parse(xml, strlen(xml), &s->ovf, errp);
    free(xml);
    if (r < 0)
        goto fail;
    if (s->disk < 1 || s->disk > s->ovf.n) {
        r = vdk_error_setf(errp, EINVAL, "disk=%" PRIu64 ": the OVA has %zu disk%s", s->disk,
                           s->ovf.n, s->ovf.n == 1 ? "" : "s");
        goto fail;
    }
    if (verify) {
        if (!s->mf_name) {
            r = vdk_error_setf(errp, ENOENT, "'%s' has no manifest to verify", n->filename);
            goto fail;
        }
        char *mf = read_member(n->file, tar_find(&s->idx, s->mf_name), OVA_MAX_MANIFEST, errp);
        if (!mf) {
            r = -EINVAL;
            goto fail;
        }
        r = ova_manifest_verify(n->file, &s->idx, mf, strlen(mf), errp);
        free(mf);
        if (r < 0)
            goto fail;
    }
    if ((r = open_disk(n, s, flags, errp)) < 0)
        goto fail;
    n->size = s->inner->size;
    n->limits.request_alignment = s->inner->limits.request_alignment;
    n->limits.opt_transfer = s->inner->limits.opt_transfer;
    n->cluster_size = s->inner->cluster_size;
    return 0;
fail:
    ova_free(s);
    return r;
}

static void ova_close(struct vdk_node *n)
{
    ova_free(n->opaque);
}

static int ova_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                     unsigned flags)
{
    struct ova_state *s = n->opaque;
    return vdk_pread(s->inner, buf, bytes, offset, flags);
}

static int ova_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                            uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct ova_state *s = n->opaque;
    *pnum = bytes;
    *map = offset;
    *file = s->inner;
    return VDK_BS_RECURSE | VDK_BS_OFFSET_VALID;
}

static int ova_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                        struct vdk_error **errp)
{
    struct ova_state *s = n->opaque;
    info->cluster_size = s->inner->cluster_size;
    json_object *top = json_object_new_object(), *data = json_object_new_object();
    json_object *disks = json_object_new_array();
    if (!top || !data || !disks) {
        json_object_put(top);
        json_object_put(data);
        json_object_put(disks);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    json_object_object_add(data, "ovf", json_object_new_string(s->ovf_name));
    if (s->mf_name)
        json_object_object_add(data, "manifest", json_object_new_string(s->mf_name));
    json_object_object_add(data, "disk", json_object_new_int64((int64_t)s->disk));
    for (size_t i = 0; i < s->ovf.n; i++) {
        const struct ovf_disk *d = &s->ovf.disks[i];
        json_object *x = json_object_new_object();
        if (!x)
            continue;
        json_object_object_add(x, "index", json_object_new_int64((int64_t)i + 1));
        json_object_object_add(x, "filename", json_object_new_string(d->href ? d->href : ""));
        json_object_object_add(x, "virtual-size", json_object_new_int64((int64_t)d->capacity));
        const struct tar_entry *e = d->href ? tar_find(&s->idx, d->href) : NULL;
        if (e)
            json_object_object_add(x, "file-size", json_object_new_int64((int64_t)e->size));
        if (d->format)
            json_object_object_add(x, "format", json_object_new_string(d->format));
        json_object_array_add(disks, x);
    }
    json_object_object_add(data, "disks", disks);
    json_object_object_add(top, "type", json_object_new_string("ova"));
    json_object_object_add(top, "data", data);
    info->format_specific = top;
    return 0;
}

const struct vdk_driver vdk_driver_ova = {
    .name = "ova",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct ova_state),
    .open_opts = ova_open_opts,
    .probe = ova_probe,
    .open = ova_open,
    .close = ova_close,
    .pread = ova_pread,
    .block_status = ova_block_status,
    .get_info = ova_get_info,
};
