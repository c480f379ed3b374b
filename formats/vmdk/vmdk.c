/* SPDX-License-Identifier: MIT */
/*
 * The VMDK driver: probing, opening (embedded or standalone descriptor,
 * extent files with their safety rules), info and the driver table.
 *
 * Extent files are resolved relative to the descriptor's folder.  Each
 * must exist, be a regular file or block device, differ from the
 * descriptor and from every other extent.  A probed image (no -f) only
 * opens extents inside its own folder: a descriptor planted in a raw
 * guest disk must not read or write the host's files.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/vmdk/vmdk.h"

static int vmdk_probe(const uint8_t *buf, size_t len, const char *filename)
{
    (void)filename;
    if (len >= 4 && (vmdk_le32(buf) == VMDK4_MAGIC || vmdk_le32(buf) == VMDK3_MAGIC))
        return 100;
    return vmdk_desc_probe(buf, len) ? 100 : 0;
}

static void free_state(struct vmdk_state *s)
{
    for (size_t i = 0; i < s->n_ext; i++) {
        struct vmdk_extent *e = &s->ext[i];
        vmdk_sparse_free(e);
        vmdk_se_free(e);
        if (e->file)
            vdk_node_unref(e->file);
        free(e->filename);
    }
    free(s->ext);
    s->ext = NULL;
    s->n_ext = 0;
    vmdk_desc_free(&s->desc);
    free(s->desc_text);
    s->desc_text = NULL;
    if (s->lock_init)
        pthread_mutex_destroy(&s->lock);
    s->lock_init = false;
}

static const char *const standalone_types[] = {
    "monolithicFlat", "vmfs", "vmfsSparse", "seSparse", "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat", "vmfsRaw", "vmfsPreallocated", "vmfsEagerZeroedThick",
    "vmfsThin", NULL,
};

static bool path_escapes(const char *p)
{
    if (p[0] == '/' || strstr(p, "://"))
        return true;
    for (const char *c = p; *c;) {
        size_t l = strcspn(c, "/");
        if (l == 2 && c[0] == '.' && c[1] == '.')
            return true;
        c += l;
        while (*c == '/')
            c++;
    }
    return false;
}

struct ident { dev_t dev; ino_t ino; };

/* Open extent k of the descriptor as a protocol node, with the checks. */
static int open_extent_file(struct vdk_node *n, const struct vmdk_desc_extent *d,
                            struct ident *ids, size_t k, struct vmdk_extent *e,
                            unsigned flags, struct vdk_error **errp)
{
    if (n->probed && path_escapes(d->file))
        return vdk_error_setf(errp, EPERM, "the format of '%s' was probed and its extent "
                              "file '%s' lies outside its folder; give the image format "
                              "with -f vmdk to allow it", n->filename, d->file);
    char *path = vdk_path_combine(n->filename, d->file);
    if (!path)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    e->filename = path;
    struct stat st;
    if (!strstr(path, "://")) {
        if (stat(path, &st) < 0)
            return vdk_error_setf_errno(errp, -errno, "cannot open extent file '%s'", path);
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
            return vdk_error_setf(errp, EINVAL, "extent file '%s' is not a regular file or "
                                  "block device", path);
        for (size_t i = 0; i <= k; i++) {
            if (ids[i].dev == st.st_dev && ids[i].ino == st.st_ino)
                return vdk_error_setf(errp, ELOOP, i == 0
                                      ? "extent file '%s' is the descriptor itself"
                                      : "extent file '%s' is named twice in the descriptor",
                                      path);
        }
        ids[k + 1].dev = st.st_dev;
        ids[k + 1].ino = st.st_ino;
    }
    unsigned f = flags & (VDK_O_SHARE | VDK_O_DIRECT | VDK_O_UNSAFE | VDK_O_NO_FLUSH_ON_CLOSE);
    if ((flags & VDK_O_RDWR) && d->access == VMDK_ACC_RW)
        f |= VDK_O_RDWR;
    struct vdk_error *err = NULL;
    int r = vdk_open_protocol(&e->file, path, NULL, f, &err);
    if (r < 0) {
        vdk_error_setf(errp, r, "cannot open extent file '%s': %s", path, vdk_error_msg(err));
        vdk_error_free(err);
    }
    return r;
}

static int open_flat(struct vmdk_extent *e, struct vdk_error **errp)
{
    int64_t len = vdk_get_length(e->file);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the length of '%s'",
                                    e->filename);
    if ((uint64_t)len < e->flat_offset || (uint64_t)len - e->flat_offset < e->length)
        return vdk_error_setf(errp, EINVAL, "extent file '%s' holds %" PRId64 " bytes, less "
                              "than its descriptor line needs (%" PRIu64 " from offset %"
                              PRIu64 ")", e->filename, len, e->length, e->flat_offset);
    return 0;
}

/* A streamOptimized extent we (or qemu-img create) left empty: writable
   as a stream, grains appended from the header's overhead on, the tail
   rewritten on flush.  Our own empty streams hold their tail past the
   overhead; a header whose overhead lies past the end of the file would
   put the first grain there (a hole of up to 2^40 sectors, or a memory
   node that large), so such an extent is refused for writing. */
static int maybe_stream(struct vmdk_extent *e, bool writable, struct vdk_error **errp)
{
    if (!writable || !e->compressed || !e->has_marker || e->rgd)
        return 0;
    uint8_t first[VMDK_SECTOR];
    if (vdk_pread(e->file, first, VMDK_SECTOR, 0, 0) < 0 ||
        vmdk_le64(first + 56) != VMDK4_GD_AT_END)
        return 0;
    for (uint32_t i = 0; i < e->gd_entries; i++)
        if (e->gd[i])
            return 0;
    if (e->overhead > e->file_len)
        return vdk_error_setf(errp, EINVAL, "VMDK stream '%s' says its grains start at byte "
                              "%" PRIu64 ", past the end of the file (%" PRIu64 " bytes); "
                              "it can only be opened read-only", e->filename, e->overhead,
                              e->file_len);
    e->stream = true;
    e->stream_tail = true;
    e->stream_end = e->overhead;
    return 0;
}

static int open_descriptor_file(struct vdk_node *n, struct vmdk_state *s, unsigned flags,
                                struct vdk_error **errp)
{
    int64_t len = vdk_get_length(n->file);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the length of '%s'",
                                    n->filename);
    if ((uint64_t)len > VMDK_MAX_DESC_SIZE)
        return vdk_error_setf(errp, EFBIG, "VMDK descriptor '%s' is larger than %u bytes",
                              n->filename, VMDK_MAX_DESC_SIZE);
    if (!(s->desc_text = calloc(1, (size_t)len + 1)))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = len ? vdk_pread(n->file, s->desc_text, (uint64_t)len, 0, 0) : 0;
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read '%s'", n->filename);
    if ((r = vmdk_desc_parse(s->desc_text, (size_t)len, &s->desc, errp)) < 0)
        return r;
    bool known = false;
    for (size_t i = 0; standalone_types[i]; i++)
        known |= strcmp(s->desc.create_type, standalone_types[i]) == 0;
    if (!known)
        return vdk_error_setf(errp, ENOTSUP, "unsupported VMDK image type '%s' for a "
                              "descriptor file", s->desc.create_type);
    if (!(s->ext = calloc(s->desc.n_ext, sizeof(*s->ext))))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    struct ident *ids = calloc(s->desc.n_ext + 1, sizeof(*ids));
    if (!ids)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    struct stat st;
    if (stat(n->filename, &st) == 0) {
        ids[0].dev = st.st_dev;
        ids[0].ino = st.st_ino;
    }
    uint64_t start = 0;
    for (size_t k = 0; k < s->desc.n_ext && r == 0; k++) {
        const struct vmdk_desc_extent *d = &s->desc.ext[k];
        struct vmdk_extent *e = &s->ext[k];
        s->n_ext = k + 1;
        e->type = d->type;
        e->access = d->access;
        e->desc_type = vmdk_ext_type_name(d->type);
        e->start = start;
        e->length = d->sectors * VMDK_SECTOR;
        e->flat_offset = d->offset * VMDK_SECTOR;
        start += e->length;
        if (d->access != VMDK_ACC_RW)
            s->read_only_ext = true;
        if (d->type == VMDK_EXT_ZERO)
            continue;
        if (d->type == VMDK_EXT_SESPARSE && (flags & VDK_O_RDWR)) {
            /* as qemu: seSparse is read-only */
            r = vdk_error_setf(errp, EROFS, "seSparse extent '%s': no write support for "
                               "seSparse images; open the image read-only", d->file);
            break;
        }
        if ((r = open_extent_file(n, d, ids, k, e, flags, errp)) < 0)
            break;
        if (d->type == VMDK_EXT_SESPARSE) {
            s->read_only_ext = true;
            if ((r = vmdk_se_open(e, errp)) < 0) {
                vdk_error_prepend(errp, "extent file '%s'", e->filename);
                break;
            }
            e->length = d->sectors * VMDK_SECTOR;
            continue;
        }
        if (d->type == VMDK_EXT_FLAT || d->type == VMDK_EXT_VMFS) {
            r = open_flat(e, errp);
            continue;
        }
        r = vmdk_sparse_open(e, (flags & VDK_O_RDWR) != 0, errp);
        if (r < 0) {
            vdk_error_prepend(errp, "extent file '%s'", e->filename);
            break;
        }
        /* The descriptor decides the extent's size; tables cover the
           header's capacity, grains past it read as zeros. */
        e->length = d->sectors * VMDK_SECTOR;
        r = maybe_stream(e, (flags & VDK_O_RDWR) && d->access == VMDK_ACC_RW, errp);
    }
    free(ids);
    n->size = start;
    return r;
}

/* Split extents carry an empty (zeroed) descriptor area. */
static bool has_text(struct vmdk_extent *e)
{
    uint8_t c = 0;
    return vdk_pread(e->file, &c, 1, e->desc_off, 0) == 0 && c != 0;
}

static int open_sparse_file(struct vdk_node *n, struct vmdk_state *s, unsigned flags,
                            struct vdk_error **errp)
{
    if (!(s->ext = calloc(1, sizeof(*s->ext))))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    s->n_ext = 1;
    struct vmdk_extent *e = &s->ext[0];
    vdk_node_ref(n->file);
    e->file = n->file;
    e->type = VMDK_EXT_SPARSE;
    e->access = VMDK_ACC_RW;
    e->desc_type = "";
    if (!(e->filename = strdup(n->filename)))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vmdk_sparse_open(e, (flags & VDK_O_RDWR) != 0, errp);
    if (r < 0)
        return r;
    if (e->cowd) {
        e->type = VMDK_EXT_VMFSSPARSE;
    } else if (e->desc_size && has_text(e)) {
        if (!(s->desc_text = calloc(1, e->desc_size + 1)))
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        r = vdk_pread(e->file, s->desc_text, e->desc_size, e->desc_off, 0);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot read the VMDK descriptor");
        s->embedded = true;
        if ((r = vmdk_desc_parse(s->desc_text, e->desc_size, &s->desc, errp)) < 0) {
            vdk_error_prepend(errp, "embedded descriptor of '%s'", n->filename);
            return r;
        }
    }
    if (!s->desc.create_type &&
        !(s->desc.create_type = strdup(e->cowd ? "vmfsSparse" : "monolithicSparse")))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (!s->embedded) {
        s->desc.cid = 0xffffffffu;
        s->desc.parent_cid = 0xffffffffu;
    }
    n->size = e->length;
    return maybe_stream(e, (flags & VDK_O_RDWR) != 0, errp);
}

static int vmdk_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct vmdk_state *s = n->opaque;
    uint8_t head[VMDK_SECTOR] = { 0 };
    (void)opts;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0)
        return vdk_error_setf_errno(errp, (int)flen, "cannot get the length of '%s'",
                                    n->filename);
    int r = vdk_pread(n->file, head, vdk_min_u64((uint64_t)flen, VMDK_SECTOR), 0, 0);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot read '%s'", n->filename);
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        return vdk_error_setf(errp, ENOMEM, "cannot create the VMDK lock");
    s->lock_init = true;
    uint32_t magic = vmdk_le32(head);
    if (magic == VMDK4_MAGIC || magic == VMDK3_MAGIC)
        r = open_sparse_file(n, s, flags, errp);
    else
        r = open_descriptor_file(n, s, flags, errp);
    if (r < 0)
        goto fail;
    if (n->size > VMDK_MAX_SECTORS * VMDK_SECTOR) {
        r = vdk_error_setf(errp, EFBIG, "VMDK virtual size is too large");
        goto fail;
    }
    if (s->desc.parent_cid != 0xffffffffu && s->desc.parent_hint) {
        if (!(n->backing_file = strdup(s->desc.parent_hint)) ||
            !(n->backing_fmt = strdup("vmdk"))) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
    }
    n->limits.request_alignment = VMDK_SECTOR;
    n->limits.pwrite_zeroes_alignment = VMDK_SECTOR;
    n->limits.opt_transfer = s->ext[0].grain ? (uint32_t)s->ext[0].grain : 0;
    /* Compressed extents compress every write; the others take -c's
       writes as plain writes, as qemu does. */
    n->supported_write_flags |= VDK_REQ_COMPRESSED;
    for (size_t i = 0; i < s->n_ext; i++)
        n->needs_compressed_writes |= s->ext[i].stream;
    n->cluster_size = s->ext[0].type != VMDK_EXT_FLAT ? (uint32_t)s->ext[0].grain : 0;
    return 0;
fail:
    free_state(s);
    return r;
}

static void vmdk_close(struct vdk_node *n)
{
    struct vmdk_state *s = n->opaque;
    if (!n->read_only && vmdk_flush(n) < 0)
        vdk_warn("could not write the grain tables of '%s'", n->filename);
    free_state(s);
}

static int vmdk_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                         struct vdk_error **errp)
{
    struct vmdk_state *s = n->opaque;
    info->has_dirty_flag = true;
    if (s->n_ext && s->ext[0].grain && s->ext[0].type != VMDK_EXT_FLAT)
        info->cluster_size = (uint32_t)s->ext[0].grain;
    json_object *top = json_object_new_object(), *data = json_object_new_object();
    json_object *exts = json_object_new_array();
    if (!top || !data || !exts) {
        json_object_put(top);
        json_object_put(data);
        json_object_put(exts);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    json_object_object_add(data, "cid", json_object_new_int64(s->desc.cid));
    json_object_object_add(data, "parent-cid", json_object_new_int64(s->desc.parent_cid));
    json_object_object_add(data, "create-type", json_object_new_string(s->desc.create_type));
    for (size_t i = 0; i < s->n_ext; i++) {
        const struct vmdk_extent *e = &s->ext[i];
        json_object *x = json_object_new_object();
        if (!x)
            continue;
        if (e->compressed)
            json_object_object_add(x, "compressed", json_object_new_boolean(1));
        json_object_object_add(x, "virtual-size", json_object_new_int64((int64_t)e->length));
        json_object_object_add(x, "filename",
                               json_object_new_string(e->filename ? e->filename : ""));
        if (e->grain)
            json_object_object_add(x, "cluster-size", json_object_new_int64((int64_t)e->grain));
        json_object_object_add(x, "format", json_object_new_string(e->desc_type));
        json_object_array_add(exts, x);
    }
    json_object_object_add(data, "extents", exts);
    json_object_object_add(top, "type", json_object_new_string("vmdk"));
    json_object_object_add(top, "data", data);
    info->format_specific = top;
    return 0;
}

/* "disk size": the descriptor's file and every extent file, as qemu counts. */
static int64_t vmdk_get_allocated_size(struct vdk_node *n)
{
    struct vmdk_state *s = n->opaque;
    int64_t sum = vdk_get_allocated_size(n->file);
    for (size_t i = 0; sum >= 0 && i < s->n_ext; i++) {
        if (!s->ext[i].file || s->ext[i].file == n->file)
            continue;
        int64_t a = vdk_get_allocated_size(s->ext[i].file);
        if (a > 0)
            sum += a;
    }
    return sum;
}

static int vmdk_make_empty(struct vdk_node *n, struct vdk_error **errp)
{
    struct vmdk_state *s = n->opaque;
    int r = 0;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_ext && r == 0; i++) {
        struct vmdk_extent *e = &s->ext[i];
        if (e->type != VMDK_EXT_SPARSE && e->type != VMDK_EXT_VMFSSPARSE)
            r = -ENOTSUP; /* flat data cannot be given back to the parent */
        else if (e->compressed)
            r = -ENOTSUP;
        else
            r = vmdk_sparse_make_empty(e);
    }
    pthread_mutex_unlock(&s->lock);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "cannot empty '%s'", n->filename);
    return 0;
}

const struct vdk_driver vdk_driver_vmdk = {
    .name = "vmdk",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct vmdk_state),
    .create_opts = vmdk_create_opts,
    .supports_backing = true,
    .probe = vmdk_probe,
    .open = vmdk_open,
    .close = vmdk_close,
    .create = vmdk_create,
    .pread = vmdk_pread,
    .pwrite = vmdk_pwrite,
    .pwrite_zeroes = vmdk_pwrite_zeroes,
    .flush = vmdk_flush,
    .block_status = vmdk_block_status,
    .change_backing_file = vmdk_change_backing_file,
    .make_empty = vmdk_make_empty,
    .get_info = vmdk_get_info,
    .get_allocated_size = vmdk_get_allocated_size,
    .check = vmdk_check,
    .measure = vmdk_measure,
};
