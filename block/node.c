/* SPDX-License-Identifier: MIT */
/*
 * Opening an image: protocol node, probing, format node, backing chain.
 * The node's lifetime and inspection are graph.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "block/driver.h"

/* Deep enough for long external-snapshot chains, bounded against loops
   that escape identity checks (e.g. through URIs). */
#define VDK_MAX_CHAIN_DEPTH 1000

struct chain_ctx {
    char **ids;
    size_t n;
};

static void chain_ctx_free(struct chain_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->ids[i]);
    free(c->ids);
}

/* Identity of an image file: device and inode when it is a local file. */
static char *file_identity(const char *filename)
{
    struct stat st;
    char *id = NULL;
    if (filename && stat(filename, &st) == 0) {
        if (asprintf(&id, "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino) < 0)
            return NULL;
        return id;
    }
    return filename ? strdup(filename) : NULL;
}

/* Returns -ELOOP if filename is already in the chain, else records it. */
static int chain_enter(struct chain_ctx *c, const char *filename,
                       struct vdk_error **errp)
{
    if (c->n >= VDK_MAX_CHAIN_DEPTH)
        return vdk_error_setf(errp, ELOOP, "backing chain deeper than %d images",
                              VDK_MAX_CHAIN_DEPTH);
    char *id = file_identity(filename);
    if (!id)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->ids[i], id) == 0) {
            free(id);
            return vdk_error_setf(errp, ELOOP,
                                  "backing chain loop: '%s' is its own backing file "
                                  "(directly or through other images)", filename);
        }
    }
    char **ni = realloc(c->ids, (c->n + 1) * sizeof(*ni));
    if (!ni) {
        free(id);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    c->ids = ni;
    c->ids[c->n++] = id;
    return 0;
}

/*
 * Run the driver's open and reject options it did not read.  On failure the
 * driver state is released (drivers clean up after a failed open; a
 * successful open is undone with close), so the caller frees the node with
 * vdk_node_free_internal(), not vdk_node_unref().
 */
static int node_open_driver(struct vdk_node *n, struct vdk_opts *opts,
                            unsigned flags, struct vdk_error **errp)
{
    n->open_flags = flags;
    n->read_only = !(flags & VDK_O_RDWR);
    int r = n->drv->open(n, opts, flags, errp);
    if (r < 0)
        return r;
    if (!vdk_is_pow2(n->limits.request_alignment) ||
        n->limits.request_alignment > (1u << 20)) {
        if (n->drv->close)
            n->drv->close(n);
        return vdk_error_setf(errp, EINVAL, "driver '%s' set a bad request alignment %" PRIu32,
                              n->drv->name, n->limits.request_alignment);
    }
    char ctx[96];
    snprintf(ctx, sizeof(ctx), "driver '%s'", n->drv->name);
    r = vdk_opts_check_unused(opts, ctx, errp);
    if (r < 0 && n->drv->close)
        n->drv->close(n);
    return r;
}

int vdk_open_protocol(struct vdk_node **out, const char *filename,
                      struct vdk_opts *opts, unsigned flags,
                      struct vdk_error **errp)
{
    *out = NULL;
    if (!opts && !(opts = vdk_opts_new()))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *dname = vdk_opts_get(opts, "driver");
    const struct vdk_driver *drv = NULL;
    int r;
    if (dname) {
        drv = vdk_driver_find(dname);
        if (!drv || drv->kind != VDK_DRV_PROTOCOL) {
            r = vdk_error_setf(errp, EINVAL, "unknown protocol driver '%s'", dname);
            goto out;
        }
    }
    if (!filename)
        filename = vdk_opts_peek(opts, "filename");
    if (!drv)
        drv = vdk_driver_for_uri(filename);
    if (!drv) {
        if (filename && strncmp(filename, "rbd:", 4) == 0) {
            r = vdk_error_setf(errp, ENOTSUP, "'%s': this vdk was built without the rbd "
                               "driver (meson -Drbd=enabled, librbd-dev)", filename);
            goto out;
        }
        if (filename && strstr(filename, "://")) {
            r = vdk_error_setf(errp, EINVAL, "unknown protocol in '%s'", filename);
            goto out;
        }
        drv = vdk_driver_default_protocol();
    }
    if (!filename && drv == vdk_driver_default_protocol()) {
        r = vdk_error_setf(errp, EINVAL, "no file name given");
        goto out;
    }
    if (filename && vdk_opts_set(opts, "filename", filename) < 0) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    struct vdk_node *n = vdk_node_new_internal(drv, filename);
    if (!n) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    r = node_open_driver(n, opts, flags, errp);
    if (r < 0) {
        vdk_node_free_internal(n); /* the driver released its state */
        goto out;
    }
    *out = n;
out:
    vdk_opts_free(opts);
    return r;
}

static int open_image(struct vdk_node **out, const char *filename,
                      const char *format, struct vdk_opts *opts, unsigned flags,
                      struct chain_ctx *chain, struct vdk_error **errp);

static int open_backing(struct vdk_node *n, struct vdk_opts *bopts,
                        unsigned flags, struct chain_ctx *chain,
                        struct vdk_error **errp)
{
    const char *fmt = vdk_opts_get(bopts, "driver");
    char *fmt_copy = NULL;
    if (!fmt)
        fmt = n->backing_fmt;
    if (!fmt && n->probed) {
        vdk_opts_free(bopts);
        return vdk_error_setf(errp, EINVAL,
                              "the format of '%s' was probed and it does not record the "
                              "format of its backing file '%s'; give the image format "
                              "with -f, or record the backing format with "
                              "'rebase -u -b %s -F FMT'",
                              n->filename, n->backing_file, n->backing_file);
    }
    if (fmt && !(fmt_copy = strdup(fmt))) {
        vdk_opts_free(bopts);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    free(n->full_backing_file);
    n->full_backing_file = vdk_path_combine(n->filename, n->backing_file);
    if (!n->full_backing_file) {
        free(fmt_copy);
        vdk_opts_free(bopts);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    unsigned bflags = (flags & ~(VDK_O_RDWR | VDK_O_CHECK_REPAIR));
    int r = open_image(&n->backing, n->full_backing_file, fmt_copy, bopts, bflags,
                       chain, errp);
    if (r < 0)
        vdk_error_prepend(errp, "opening backing file '%s'", n->backing_file);
    free(fmt_copy);
    return r;
}

/* Open a filter node over the image file_opts names.  Consumes both
   option lists. */
static int open_filter(struct vdk_node **out, const struct vdk_driver *drv,
                       struct vdk_opts *opts, struct vdk_opts *file_opts, unsigned flags,
                       struct chain_ctx *chain, struct vdk_error **errp)
{
    struct vdk_node *child = NULL, *n = NULL;
    int r;
    if (!drv->open) {
        vdk_opts_free(file_opts);
        vdk_opts_free(opts);
        return vdk_error_setf(errp, EINVAL, "driver '%s' cannot be opened by name",
                              drv->name);
    }
    if (!vdk_opts_count(file_opts)) {
        vdk_opts_free(file_opts);
        vdk_opts_free(opts);
        return vdk_error_setf(errp, EINVAL, "%s: no image below (give file.filename= "
                              "or file.driver=...)", drv->name);
    }
    r = open_image(&child, NULL, NULL, file_opts, flags, chain, errp);
    if (r < 0) {
        vdk_opts_free(opts);
        return r;
    }
    n = vdk_node_new_internal(drv, child->filename);
    if (!n) {
        vdk_node_unref(child);
        vdk_opts_free(opts);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    n->file = child;
    r = node_open_driver(n, opts, flags, errp);
    vdk_opts_free(opts);
    if (r < 0) {
        vdk_node_free_internal(n); /* unreferences the child */
        return r;
    }
    *out = n;
    return 0;
}

static int open_image(struct vdk_node **out, const char *filename,
                      const char *format, struct vdk_opts *opts, unsigned flags,
                      struct chain_ctx *chain, struct vdk_error **errp)
{
    *out = NULL;
    struct vdk_node *file = NULL, *n = NULL;
    struct vdk_opts *file_opts = NULL, *backing_opts = NULL;
    const struct vdk_driver *drv = NULL;
    char *fname = NULL;
    int r;

    if (!opts && !(opts = vdk_opts_new()))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *dname = vdk_opts_get(opts, "driver");
    if (dname)
        format = dname;
    if (format) {
        drv = vdk_driver_find(format);
        if (!drv) {
            r = vdk_error_setf(errp, EINVAL, "unknown image format '%s'", format);
            goto fail;
        }
    }
    file_opts = vdk_opts_extract_prefix(opts, "file");
    backing_opts = vdk_opts_extract_prefix(opts, "backing");
    if (!file_opts || !backing_opts) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    /* A filter (fault): its child ("file.") is a whole image, opened as
       if named alone (format from file.driver, else probed). */
    if (drv && drv->kind == VDK_DRV_FILTER) {
        vdk_opts_free(backing_opts);
        backing_opts = NULL;
        return open_filter(out, drv, opts, file_opts, flags, chain, errp);
    }
    if (!filename)
        filename = vdk_opts_get(opts, "filename");
    if (!filename)
        filename = vdk_opts_peek(file_opts, "filename");
    if (filename && !(fname = strdup(filename))) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    if (fname) {
        r = chain_enter(chain, fname, errp);
        if (r < 0)
            goto fail;
    }

    /* A protocol driver named as the format is the whole image. */
    if (drv && drv->kind == VDK_DRV_PROTOCOL) {
        r = vdk_opts_merge(file_opts, opts, NULL);
        vdk_opts_free(opts);
        opts = NULL;
        if (r == 0 && !vdk_opts_has(file_opts, "driver"))
            r = vdk_opts_set(file_opts, "driver", drv->name);
        if (r < 0) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto fail;
        }
        r = vdk_open_protocol(out, fname, file_opts, flags, errp);
        file_opts = NULL;
        vdk_opts_free(backing_opts);
        free(fname);
        return r;
    }

    /* A metadata-only open (info) locks as qemu-img info: a format with
       metadata must not change under it (hold consistent read, deny
       writers), raw takes no lock.  When probing, the lock comes after. */
    bool info_open = (flags & VDK_O_NO_IO) && !(flags & (VDK_O_RDWR | VDK_O_SHARE));
    unsigned pflags = flags;
    if (info_open && drv && drv != &vdk_driver_raw)
        pflags &= ~VDK_O_NO_IO;
    r = vdk_open_protocol(&file, fname, file_opts, pflags, errp);
    file_opts = NULL;
    if (r < 0)
        goto fail;

    bool probed = false;
    if (!drv) {
        r = vdk_probe_format(file, &drv, errp);
        if (r < 0)
            goto fail;
        probed = true;
        if (info_open && drv != &vdk_driver_raw && file->drv->reopen) {
            r = file->drv->reopen(file, flags & ~VDK_O_NO_IO, errp);
            if (r < 0)
                goto fail;
            file->open_flags = flags & ~VDK_O_NO_IO;
        }
    }

    n = vdk_node_new_internal(drv, fname);
    if (!n) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    n->file = file;
    file = NULL;
    n->probed = probed;
    r = node_open_driver(n, opts, flags, errp);
    if (r < 0) {
        vdk_node_free_internal(n); /* the driver released its state; frees n->file too */
        n = NULL;
        goto fail;
    }
    if (probed && drv == &vdk_driver_raw && (flags & VDK_O_RDWR)) {
        n->protect_sector0 = true;
        vdk_warn("image format was not specified for '%s' and probing guessed raw; "
                 "writes to its first 512 bytes that would make it probe as another format are "
                 "refused. Specify the 'raw' format "
                 "explicitly to remove the restrictions.", fname);
    }

    if (n->backing_file && drv->supports_backing && !(flags & VDK_O_NO_BACKING)) {
        r = open_backing(n, backing_opts, flags, chain, errp);
        backing_opts = NULL;
        if (r < 0)
            goto fail;
    } else if (vdk_opts_count(backing_opts)) {
        r = vdk_error_setf(errp, EINVAL, "backing options given but '%s' has no backing file",
                           fname ? fname : drv->name);
        goto fail;
    }
    vdk_opts_free(backing_opts);
    vdk_opts_free(opts);
    free(fname);
    *out = n;
    return 0;

fail:
    if (n)
        vdk_node_unref(n);
    vdk_node_unref(file);
    vdk_opts_free(file_opts);
    vdk_opts_free(backing_opts);
    vdk_opts_free(opts);
    free(fname);
    return r;
}

int vdk_open(struct vdk_node **out, const char *filename, const char *format,
             struct vdk_opts *opts, unsigned flags, struct vdk_error **errp)
{
    struct chain_ctx chain = { 0 };
    /* A throwaway overlay reads the image and never writes it. */
    unsigned f = (flags & VDK_O_SNAPSHOT) ? (flags & ~(VDK_O_RDWR | VDK_O_SNAPSHOT)) : flags;
    int r = open_image(out, filename, format, opts, f, &chain, errp);
    chain_ctx_free(&chain);
    if (r == 0 && (flags & VDK_O_SNAPSHOT)) {
        struct vdk_node *base = *out;
        *out = NULL;
        r = vdk_overlay_new(out, base, errp);
    }
    return r;
}

int vdk_open_opts(struct vdk_node **out, struct vdk_opts *opts, unsigned flags,
                  struct vdk_error **errp)
{
    return vdk_open(out, NULL, NULL, opts, flags, errp);
}

/* ---- inspection ---- */
