/* SPDX-License-Identifier: MIT */
/*
 * The rbd driver's whole-image operations: create (object size and
 * features), resize, reopen read-only <-> read-write, info, and the
 * image's snapshots as internal snapshots (as qemu-img snapshot does).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <rbd/features.h>

#include "protocols/rbd.h"

#define RBD_MIN_ORDER 12 /* 4 KiB objects */
#define RBD_MAX_ORDER 25 /* 32 MiB objects */
#define RBD_MAX_SNAPS 4096

const struct vdk_opt_desc vdk_rbd_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "cluster_size", VDK_OPT_SIZE, "RBD object size (power of two, 4k to 32M)", NULL,
      NULL },
    { "features", VDK_OPT_STRING, "RBD features joined by '+' (layering, exclusive-lock, "
      "object-map, fast-diff, deep-flatten, striping, journaling; 'none'); default: "
      "the cluster's rbd_default_features", NULL, NULL },
    { "connect-timeout", VDK_OPT_NUMBER, "Seconds to wait for the monitors (default 30)", NULL, NULL },
    { "op-timeout", VDK_OPT_NUMBER, "Seconds one cluster operation may take (default 60)", NULL, NULL },
    { "lock", VDK_OPT_BOOL, "(for opening; ignored by create)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static const struct { const char *name; uint64_t bit; } feature_names[] = {
    { RBD_FEATURE_NAME_LAYERING, RBD_FEATURE_LAYERING },
    { RBD_FEATURE_NAME_STRIPINGV2, RBD_FEATURE_STRIPINGV2 },
    { RBD_FEATURE_NAME_EXCLUSIVE_LOCK, RBD_FEATURE_EXCLUSIVE_LOCK },
    { RBD_FEATURE_NAME_OBJECT_MAP, RBD_FEATURE_OBJECT_MAP },
    { RBD_FEATURE_NAME_FAST_DIFF, RBD_FEATURE_FAST_DIFF },
    { RBD_FEATURE_NAME_DEEP_FLATTEN, RBD_FEATURE_DEEP_FLATTEN },
    { RBD_FEATURE_NAME_JOURNALING, RBD_FEATURE_JOURNALING },
};

/* "a+b+c" or "none" into feature bits. */
static int parse_features(const char *v, uint64_t *out, struct vdk_error **errp)
{
    *out = 0;
    if (strcmp(v, "none") == 0)
        return 0;
    const char *p = v;
    if (strlen(v) > 256)
        return vdk_error_setf(errp, EINVAL, "rbd: features= is too long");
    while (*p) {
        size_t len = strcspn(p, "+");
        size_t i;
        for (i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
            if (strlen(feature_names[i].name) == len &&
                strncmp(feature_names[i].name, p, len) == 0)
                break;
        if (i == sizeof(feature_names) / sizeof(feature_names[0]) || !len)
            return vdk_error_setf(errp, EINVAL, "rbd: unknown feature '%.*s' (features= "
                                  "takes names joined by '+')", (int)(len > 64 ? 64 : len), p);
        *out |= feature_names[i].bit;
        p += len;
        if (*p == '+')
            p++;
    }
    return 0;
}

int vdk_rbd_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                   struct vdk_error **errp)
{
    struct rbd_where w;
    rados_t cluster = NULL;
    rados_ioctx_t io = NULL;
    rbd_image_options_t ro = NULL;
    uint64_t size = 0, obj = 0, features = 0;
    const char *fv;
    int r;
    if (filename && vdk_opts_set(opts, "filename", filename) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if ((r = vdk_opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "cluster_size", 0, &obj, errp)) < 0)
        return r;
    if (obj && (!vdk_is_pow2(obj) || obj < (1u << RBD_MIN_ORDER) ||
                obj > (1u << RBD_MAX_ORDER)))
        return vdk_error_setf(errp, EINVAL, "rbd: cluster_size (the object size) must be a "
                              "power of two from 4k to 32M");
    if ((fv = vdk_opts_get(opts, "features")) && (r = parse_features(fv, &features, errp)) < 0)
        return r;
    if (size > (uint64_t)INT64_MAX)
        return vdk_error_setf(errp, EINVAL, "rbd: image size is too large");
    r = vdk_rbd_where_from_opts(&w, opts, true, errp);
    if (r < 0)
        return r;
    r = vdk_rbd_connect(&w, &cluster, &io, errp);
    if (r < 0)
        goto out;
    rbd_image_options_create(&ro);
    if (obj)
        rbd_image_options_set_uint64(ro, RBD_IMAGE_OPTION_ORDER, (uint64_t)__builtin_ctzll(obj));
    if (fv)
        rbd_image_options_set_uint64(ro, RBD_IMAGE_OPTION_FEATURES, features);
    r = rbd_create4(io, w.spec.image, size, ro);
    if (r == -EEXIST)
        vdk_error_setf(errp, EEXIST, "rbd: image '%s' already exists in pool '%s'",
                       w.spec.image, w.spec.pool);
    else if (r < 0)
        vdk_error_setf(errp, -r, "rbd: cannot create image '%s': %s", w.spec.image,
                       strerror(-r));
out:
    if (ro)
        rbd_image_options_destroy(ro);
    vdk_rbd_disconnect(cluster, io);
    vdk_rbd_spec_clear(&w.spec);
    return r;
}

int vdk_rbd_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                     bool allow_shrink, struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    if (prealloc != VDK_PREALLOC_OFF)
        return vdk_error_setf(errp, ENOTSUP, "rbd: preallocation is not supported");
    if (size < n->size && !allow_shrink)
        return vdk_error_setf(errp, EINVAL, "rbd: refusing to shrink '%s'", s->display);
    if (size == n->size)
        return 0;
    int r = rbd_resize(s->image, size);
    if (r == 0)
        n->size = size;
    vdk_rbd_status_forget(s);
    if (r < 0)
        return vdk_error_setf(errp, -r, "rbd: cannot resize '%s': %s", s->display,
                              strerror(-r));
    return 0;
}

int vdk_rbd_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    bool was_locked = s->locked;
    rbd_image_t img = NULL;
    int r = vdk_rbd_open_image(s, flags & VDK_O_RDWR, &img, errp);
    if (r < 0) {
        s->locked = was_locked;
        return r;
    }
    bool now_locked = s->locked;
    if (was_locked)
        rbd_lock_release(s->image);
    rbd_close(s->image);
    s->image = img;
    s->locked = now_locked;
    vdk_rbd_status_forget(s);
    return 0;
}

int vdk_rbd_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                     struct vdk_error **errp)
{
    info->cluster_size = n->cluster_size;
    return 0;
}

static int snap_error(struct rbd_state *s, int r, const char *what, const char *name,
                      struct vdk_error **errp)
{
    if (r == -ENOENT)
        return vdk_error_setf(errp, ENOENT, "rbd: '%s' has no snapshot '%s'", s->display,
                              name);
    if (r == -EEXIST)
        return vdk_error_setf(errp, EEXIST, "rbd: '%s' already has a snapshot '%s'",
                              s->display, name);
    return vdk_error_setf(errp, -r, "rbd: cannot %s snapshot '%s' of '%s': %s", what, name,
                          s->display, strerror(-r));
}

int vdk_rbd_snapshot_create(struct vdk_node *n, const char *name, struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    int r = vdk_rbd_spec_check_name("snapshot", name, true, errp);
    if (r < 0)
        return r;
    r = rbd_snap_create(s->image, name);
    return r < 0 ? snap_error(s, r, "create", name, errp) : 0;
}

int vdk_rbd_snapshot_goto(struct vdk_node *n, const char *name, struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    int r = rbd_snap_rollback(s->image, name);
    vdk_rbd_status_forget(s);
    return r < 0 ? snap_error(s, r, "apply", name, errp) : 0;
}

int vdk_rbd_snapshot_delete(struct vdk_node *n, const char *name, struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    int r = rbd_snap_remove(s->image, name);
    return r < 0 ? snap_error(s, r, "delete", name, errp) : 0;
}

int vdk_rbd_snapshot_list(struct vdk_node *n, struct vdk_snapshot_info **list, int *count,
                          struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    rbd_snap_info_t *snaps = NULL;
    int max = 16, r;
    *list = NULL;
    *count = 0;
    for (;;) {
        snaps = calloc((size_t)max, sizeof(*snaps));
        if (!snaps)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        r = rbd_snap_list(s->image, snaps, &max);
        if (r != -ERANGE || max > RBD_MAX_SNAPS)
            break;
        free(snaps);
    }
    if (r < 0) {
        free(snaps);
        return vdk_error_setf(errp, -r, "rbd: cannot list the snapshots of '%s': %s",
                              s->display, r == -ERANGE ? "too many" : strerror(-r));
    }
    int nr = r;
    struct vdk_snapshot_info *out = calloc((size_t)(nr ? nr : 1), sizeof(*out));
    if (!out) {
        rbd_snap_list_end(snaps);
        free(snaps);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    for (int i = 0; i < nr; i++) {
        /* qemu-img names rbd snapshots by name in both columns */
        snprintf(out[i].id, sizeof(out[i].id), "%s", snaps[i].name);
        out[i].name = strdup(snaps[i].name);
        out[i].icount = UINT64_MAX;
        struct timespec ts;
        if (rbd_snap_get_timestamp(s->image, snaps[i].id, &ts) == 0) {
            out[i].date_sec = (uint32_t)ts.tv_sec;
            out[i].date_nsec = (uint32_t)ts.tv_nsec;
        }
        if (!out[i].name) {
            vdk_snapshot_list_free(out, i);
            rbd_snap_list_end(snaps);
            free(snaps);
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
    }
    rbd_snap_list_end(snaps);
    free(snaps);
    *list = out;
    *count = nr;
    return 0;
}
