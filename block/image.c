/* SPDX-License-Identifier: MIT */
/*
 * Whole-image operations: create, info, check, measure, amend, backing
 * file changes and internal snapshots.  Each checks what the driver
 * offers and gives one clear message when it offers nothing.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/driver.h"

static const struct vdk_driver *protocol_for(const char *filename)
{
    const struct vdk_driver *p = vdk_driver_for_uri(filename);
    return p ? p : vdk_driver_default_protocol();
}

/*
 * Move options that only the protocol understands (e.g. nocow for files)
 * from the format's list to the protocol's, so "-o nocow=on" works with
 * "-f raw" as in qemu-img.
 */
static int split_protocol_opts(const struct vdk_driver *fmt,
                               const struct vdk_driver *proto,
                               struct vdk_opts *opts, struct vdk_opts *popts)
{
    const char *k, *v;
    size_t i = 0;
    while (vdk_opts_nth(opts, i, &k, &v)) {
        if (!vdk_opt_desc_find(fmt->create_opts, k) &&
            vdk_opt_desc_find(proto->create_opts, k) && strcmp(k, "size") != 0) {
            if (vdk_opts_set(popts, k, v) < 0)
                return -ENOMEM;
            vdk_opts_del(opts, k);
            continue;
        }
        i++;
    }
    return 0;
}

static bool is_local(const char *filename)
{
    return filename && !vdk_filename_is_remote(filename);
}

void vdk_created_file_before(struct vdk_created_file *c, const char *filename)
{
    struct stat st;
    memset(c, 0, sizeof(*c));
    c->existed = !is_local(filename) || lstat(filename, &st) == 0 || errno != ENOENT;
}

void vdk_created_file_after(struct vdk_created_file *c, const char *filename)
{
    struct stat st;
    if (c->existed || c->created || stat(filename, &st) < 0 || !S_ISREG(st.st_mode))
        return;
    c->created = true;
    c->dev = (uint64_t)st.st_dev;
    c->ino = (uint64_t)st.st_ino;
}

void vdk_created_file_remove(struct vdk_created_file *c, const char *filename)
{
    struct stat st;
    if (c->created && lstat(filename, &st) == 0 && (uint64_t)st.st_dev == c->dev &&
        (uint64_t)st.st_ino == c->ino)
        unlink(filename);
    c->created = false;
}

int vdk_create(const char *format, const char *filename, struct vdk_opts *opts,
               struct vdk_error **errp)
{
    const struct vdk_driver *drv = vdk_driver_find(format);
    struct vdk_opts *popts = NULL;
    struct vdk_node *file = NULL;
    struct vdk_created_file created = { .existed = true };
    int r;
    char ctx[96];

    if (!opts && !(opts = vdk_opts_new()))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (!drv) {
        r = vdk_error_setf(errp, EINVAL, "unknown file format '%s'", format);
        goto out;
    }
    if (!drv->create) {
        r = vdk_error_setf(errp, ENOTSUP, "format '%s' does not support image creation",
                           format);
        goto out;
    }
    snprintf(ctx, sizeof(ctx), "format '%s'", drv->name);
    if (drv->kind == VDK_DRV_PROTOCOL) {
        r = vdk_opts_validate(opts, drv->create_opts, ctx, errp);
        if (r < 0)
            goto out;
        vdk_created_file_before(&created, filename);
        r = drv->create(filename, NULL, opts, errp);
        vdk_created_file_after(&created, filename);
        if (r == 0)
            r = vdk_opts_check_unused(opts, ctx, errp);
        goto fail;
    }
    const struct vdk_driver *proto = protocol_for(filename);
    popts = vdk_opts_extract_prefix(opts, "file");
    if (!popts || split_protocol_opts(drv, proto, opts, popts) < 0) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    r = vdk_opts_validate(opts, drv->create_opts, ctx, errp);
    if (r < 0)
        goto out;
    if (drv->create_check) {
        struct vdk_opts *cc = vdk_opts_clone(opts);
        r = cc ? drv->create_check(filename, cc, errp)
               : vdk_error_setf(errp, ENOMEM, "out of memory");
        vdk_opts_free(cc);
        if (r < 0)
            goto out;
    }
    vdk_created_file_before(&created, filename);
    if (proto->create) {
        struct vdk_opts *pc = vdk_opts_clone(popts);
        if (!pc) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto out;
        }
        snprintf(ctx, sizeof(ctx), "protocol '%s'", proto->name);
        r = vdk_opts_validate(pc, proto->create_opts, ctx, errp);
        if (r == 0) {
            r = proto->create(filename, NULL, pc, errp);
            vdk_created_file_after(&created, filename);
        }
        if (r == 0)
            r = vdk_opts_check_unused(pc, ctx, errp);
        vdk_opts_free(pc);
        if (r < 0)
            goto fail;
        /* Create options were for the file, not for opening it. */
        vdk_opts_free(popts);
        popts = vdk_opts_new();
        if (!popts) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
    }
    r = vdk_open_protocol(&file, filename, popts, VDK_O_RDWR, errp);
    popts = NULL;
    if (r < 0)
        goto fail;
    r = drv->create(filename, file, opts, errp);
    if (r == 0) {
        snprintf(ctx, sizeof(ctx), "format '%s'", drv->name);
        r = vdk_opts_check_unused(opts, ctx, errp);
    }
    if (r == 0)
        r = vdk_flush(file);
fail:
    if (r < 0) {
        if (file)
            vdk_node_unref(file);
        file = NULL;
        vdk_created_file_remove(&created, filename);
    }
out:
    if (file)
        vdk_node_unref(file);
    vdk_opts_free(popts);
    vdk_opts_free(opts);
    return r;
}

void vdk_create_print_help(const char *format, const char *filename, FILE *out)
{
    const struct vdk_driver *drv = vdk_driver_find(format);
    if (!drv)
        return;
    const struct vdk_driver *proto = drv->kind == VDK_DRV_PROTOCOL ? NULL
                                                                   : protocol_for(filename);
    size_t n = 0;
    for (const struct vdk_opt_desc *d = drv->create_opts; d && d->name; d++)
        n++;
    for (const struct vdk_opt_desc *d = proto ? proto->create_opts : NULL; d && d->name; d++)
        n++;
    struct vdk_opt_desc *all = calloc(n + 1, sizeof(*all));
    if (!all)
        return;
    size_t k = 0;
    for (const struct vdk_opt_desc *d = drv->create_opts; d && d->name; d++)
        all[k++] = *d;
    for (const struct vdk_opt_desc *d = proto ? proto->create_opts : NULL; d && d->name; d++)
        if (!vdk_opt_desc_find(drv->create_opts, d->name))
            all[k++] = *d;
    vdk_opts_print_help(out, "Supported options:", all);
    free(all);
}

/*
 * Result structs grow at the end: the caller says how much it has room
 * for in struct_size.  The first version's size is the smallest accepted.
 */
#define INFO_SIZE_V1    sizeof(struct vdk_image_info)
#define CHECK_SIZE_V1   sizeof(struct vdk_check_result)
#define MEASURE_SIZE_V1 sizeof(struct vdk_measure)

/* Copy a filled result into the caller's struct, as far as it reaches. */
static void copy_out(void *dst, const void *src, size_t full)
{
    uint32_t room = *(const uint32_t *)dst;
    memcpy((char *)dst + sizeof(uint32_t), (const char *)src + sizeof(uint32_t),
           (room < full ? room : full) - sizeof(uint32_t));
}

static int bad_size(const char *what, struct vdk_error **errp)
{
    return vdk_error_setf(errp, EINVAL, "%s: struct_size not set (use the "
                          "*_INIT initialiser)", what);
}

int vdk_get_info(struct vdk_node *n, struct vdk_image_info *info,
                 struct vdk_error **errp)
{
    if (!info || info->struct_size < INFO_SIZE_V1)
        return bad_size("vdk_get_info", errp);
    struct vdk_image_info out = { .struct_size = sizeof(out) };
    out.format = n->drv->name;
    int64_t len = vdk_get_length(n);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "could not get the size of '%s'",
                                    n->filename);
    out.virtual_size = (uint64_t)len;
    out.actual_size = vdk_get_allocated_size(n);
    out.cluster_size = n->cluster_size;
    if (n->drv->get_info) {
        struct vdk_driver_info di = { .cluster_size = n->cluster_size };
        int r = n->drv->get_info(n, &di, errp);
        if (r < 0) {
            if (di.format_specific)
                json_object_put(di.format_specific);
            return r;
        }
        out.cluster_size = di.cluster_size;
        out.encrypted = di.encrypted;
        out.has_dirty_flag = di.has_dirty_flag;
        out.dirty_flag = di.dirty_flag;
        if (di.format_specific) {
            const char *txt = json_object_to_json_string_ext(
                di.format_specific, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
            out.format_specific = txt ? strdup(txt) : NULL;
            json_object_put(di.format_specific);
            if (!out.format_specific)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
    }
    copy_out(info, &out, sizeof(out));
    return 0;
}

void vdk_image_info_clear(struct vdk_image_info *info)
{
    if (!info || info->struct_size < INFO_SIZE_V1)
        return;
    free(info->format_specific);
    info->format_specific = NULL;
}

int vdk_check(struct vdk_node *n, struct vdk_check_result *res, unsigned fix,
              struct vdk_error **errp)
{
    if (!res || res->struct_size < CHECK_SIZE_V1)
        return bad_size("vdk_check", errp);
    struct vdk_check_result out = { .struct_size = sizeof(out) };
    copy_out(res, &out, sizeof(out)); /* zeroed even on failure */
    if (!n->drv->check)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support checks",
                              n->drv->name);
    if (fix && n->read_only)
        return vdk_error_setf(errp, EPERM, "cannot repair '%s': opened read-only",
                              n->filename);
    int r = n->drv->check(n, &out, fix, errp);
    copy_out(res, &out, sizeof(out));
    return r;
}

int vdk_measure(const char *format, struct vdk_opts *opts, struct vdk_node *src,
                uint64_t size, struct vdk_measure *out, struct vdk_error **errp)
{
    if (!out || out->struct_size < MEASURE_SIZE_V1)
        return bad_size("vdk_measure", errp);
    const struct vdk_driver *drv = vdk_driver_find(format);
    if (!drv)
        return vdk_error_setf(errp, EINVAL, "unknown file format '%s'", format);
    if (!drv->measure)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support measure",
                              format);
    struct vdk_measure m = { .struct_size = sizeof(m) };
    int r = drv->measure(opts, src, size, &m, errp);
    copy_out(out, &m, sizeof(m));
    return r;
}

int vdk_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp)
{
    if (!n->drv->amend)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support amending "
                              "options", n->drv->name);
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    return n->drv->amend(n, opts, errp);
}

int vdk_change_backing_file(struct vdk_node *n, const char *backing_file,
                            const char *backing_fmt, struct vdk_error **errp)
{
    if (!n->drv->change_backing_file)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support backing files",
                              n->drv->name);
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    return n->drv->change_backing_file(n, backing_file, backing_fmt, errp);
}

/* A format without snapshots of its own over a protocol with them (raw
   over rbd) passes snapshot operations down, as qemu-img does. */
static struct vdk_node *snapshot_target(struct vdk_node *n)
{
    if (!n->drv->snapshot_list && n->file && !n->backing && n->file->drv->snapshot_list)
        return n->file;
    return n;
}

#define SNAPSHOT_OP(call, ...)                                                        \
    do {                                                                              \
        n = snapshot_target(n);                                                       \
        if (!n->drv->call)                                                            \
            return vdk_error_setf(errp, ENOTSUP, "format '%s' does not support "     \
                                  "internal snapshots", n->drv->name);                \
        return n->drv->call(n, __VA_ARGS__, errp);                                    \
    } while (0)

int vdk_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list,
                      int *count, struct vdk_error **errp)
{
    *list = NULL;
    *count = 0;
    SNAPSHOT_OP(snapshot_list, list, count);
}

void vdk_snapshot_list_free(struct vdk_snapshot_info *list, int count)
{
    for (int i = 0; list && i < count; i++)
        free(list[i].name);
    free(list);
}

int vdk_snapshot_create(struct vdk_node *n, const char *name, struct vdk_error **errp)
{
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    SNAPSHOT_OP(snapshot_create, name);
}

int vdk_snapshot_goto(struct vdk_node *n, const char *id_or_name, struct vdk_error **errp)
{
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    SNAPSHOT_OP(snapshot_goto, id_or_name);
}

int vdk_snapshot_delete(struct vdk_node *n, const char *id_or_name,
                        struct vdk_error **errp)
{
    if (n->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", n->filename);
    SNAPSHOT_OP(snapshot_delete, id_or_name);
}
