/* SPDX-License-Identifier: MIT */
/*
 * The "rbd" protocol driver: an image in a Ceph cluster, through librbd.
 * Names: qemu's rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE...]
 * (rbd-spec.h), or --image-opts driver=rbd,pool=,namespace=,image=,
 * snapshot=,conf=,user=.
 *
 * Every request goes through librbd's asynchronous API and the calling
 * thread waits only for its own request, so the NBD server's workers,
 * convert's workers and the virtio-blk queues of one node keep as many
 * requests in flight as they have threads, and librbd splits each into
 * parallel per-object operations.  Since our callers are threads that
 * may block, requests skip librbd's two hand-offs to its work-queue
 * thread (see rbd_request and vdk_rbd_connect).
 *
 * Waits are bounded: connecting by connect-timeout (client_mount_timeout),
 * each cluster operation by op-timeout (rados_osd_op_timeout and
 * rados_mon_op_timeout), unless the conf file or the name sets them.
 *
 * Writers take the image's exclusive lock (when the image has that
 * feature) through rbd_lock_acquire, which keeps it until close: a second
 * vdk writer is refused with a clear message instead of the lock passing
 * back and forth.  lock=off leaves librbd's cooperative hand-over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/rbd.h"

static const struct vdk_opt_desc rbd_open_opts[] = {
    { "filename", VDK_OPT_STRING, "rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE...]",
      NULL, NULL },
    { "pool", VDK_OPT_STRING, "Ceph pool", NULL, NULL },
    { "namespace", VDK_OPT_STRING, "RADOS namespace in the pool", NULL, NULL },
    { "image", VDK_OPT_STRING, "rbd image name", NULL, NULL },
    { "snapshot", VDK_OPT_STRING, "open this snapshot (read-only)", NULL, NULL },
    { "conf", VDK_OPT_STRING, "ceph.conf path (default: $CEPH_CONF, /etc/ceph/ceph.conf)",
      NULL, NULL },
    { "user", VDK_OPT_STRING, "Ceph user (client.USER), default admin", NULL, NULL },
    { "connect-timeout", VDK_OPT_NUMBER, "Seconds to wait for the monitors "
      "(client_mount_timeout; 0: for ever)", "30", NULL },
    { "op-timeout", VDK_OPT_NUMBER, "Seconds one cluster operation may take "
      "(rados_osd_op_timeout, rados_mon_op_timeout; 0: for ever)", "60", NULL },
    { "lock", VDK_OPT_BOOL, "Writers hold the image's exclusive lock until close",
      "on", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

/* ---- where: name and options ---- */

static int take_name(struct vdk_opts *opts, const char *key, const char *what, bool required,
                     char **out, struct vdk_error **errp)
{
    const char *v = vdk_opts_get(opts, key);
    int r = vdk_rbd_spec_check_name(what, v, required, errp);
    if (r < 0)
        return r;
    if (v && *v && !(*out = strdup(v)))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    return 0;
}

static int take_timeout(struct vdk_opts *opts, const char *key, uint64_t *out,
                        struct vdk_error **errp)
{
    *out = UINT64_MAX; /* not given */
    if (!vdk_opts_has(opts, key))
        return 0;
    int r = vdk_opts_get_uint(opts, key, 0, out, errp);
    if (r < 0)
        return r;
    if (*out > RBD_TIMEOUT_MAX)
        return vdk_error_setf(errp, EINVAL, "%s must be at most %d seconds", key,
                              RBD_TIMEOUT_MAX);
    return 0;
}

/*
 * The name's pairs that are vdk's own options (connect-timeout,
 * op-timeout, lock) become options, unless given as options too.
 */
static int take_own_pairs(struct rbd_spec *s, struct vdk_opts *opts, struct vdk_error **errp)
{
    static const char *const own[] = { "connect-timeout", "op-timeout", "lock" };
    int k = 0;
    for (int i = 0; i < s->n_pairs; i++) {
        bool mine = false;
        for (size_t j = 0; j < sizeof(own) / sizeof(own[0]); j++)
            mine |= strcmp(s->key[i], own[j]) == 0;
        if (!mine) {
            s->key[k] = s->key[i];
            s->value[k++] = s->value[i];
            continue;
        }
        int r = vdk_opts_set_default(opts, s->key[i], s->value[i]);
        free(s->key[i]);
        free(s->value[i]);
        if (r < 0) {
            for (int j = i + 1; j < s->n_pairs; j++) {
                s->key[k] = s->key[j];
                s->value[k++] = s->value[j];
            }
            s->n_pairs = k;
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        }
    }
    s->n_pairs = k;
    return 0;
}

int vdk_rbd_where_from_opts(struct rbd_where *w, struct vdk_opts *opts, bool for_create,
                            struct vdk_error **errp)
{
    memset(w, 0, sizeof(*w));
    const char *fn = vdk_opts_get(opts, "filename");
    int r;
    if (fn && *fn) {
        if (vdk_opts_has(opts, "pool") || vdk_opts_has(opts, "image"))
            return vdk_error_setf(errp, EINVAL, "rbd: give either filename or "
                                  "pool=/image=, not both");
        r = vdk_rbd_spec_parse(fn, &w->spec, errp);
        if (r < 0)
            return r;
        r = take_own_pairs(&w->spec, opts, errp);
        if (r < 0)
            goto fail;
    } else {
        struct rbd_spec *s = &w->spec;
        if ((r = take_name(opts, "pool", "pool", true, &s->pool, errp)) < 0 ||
            (r = take_name(opts, "namespace", "namespace", false, &s->ns, errp)) < 0 ||
            (r = take_name(opts, "image", "image", true, &s->image, errp)) < 0 ||
            (r = take_name(opts, "snapshot", "snapshot", false, &s->snap, errp)) < 0)
            goto fail;
    }
    /* conf= and user= options override the name's conf= and id=. */
    char *conf = NULL, *user = NULL;
    if ((r = take_name(opts, "conf", "conf", false, &conf, errp)) < 0 ||
        (r = take_name(opts, "user", "user", false, &user, errp)) < 0) {
        free(conf);
        goto fail;
    }
    if (conf) {
        free(w->spec.conf);
        w->spec.conf = conf;
    }
    if (user) {
        free(w->spec.user);
        w->spec.user = user;
    }
    if (for_create && w->spec.snap) {
        r = vdk_error_setf(errp, EINVAL, "rbd: cannot create a snapshot as an image "
                           "(drop '@%s')", w->spec.snap);
        goto fail;
    }
    if ((r = take_timeout(opts, "connect-timeout", &w->connect_timeout, errp)) < 0 ||
        (r = take_timeout(opts, "op-timeout", &w->op_timeout, errp)) < 0)
        goto fail;
    w->lock = true;
    if ((r = vdk_opts_get_bool(opts, "lock", true, &w->lock, errp)) < 0)
        goto fail;
    return 0;
fail:
    vdk_rbd_spec_clear(&w->spec);
    return r;
}

/* ---- connecting ---- */

/* Our value for a Ceph option the conf file left at Ceph's default. */
static int set_if_default(rados_t c, const char *key, const char *ceph_default,
                          const char *ours)
{
    char cur[32] = "";
    if (rados_conf_get(c, key, cur, sizeof(cur)) == 0 && strcmp(cur, ceph_default) != 0)
        return 0; /* the conf file chose */
    return rados_conf_set(c, key, ours);
}

/*
 * Set a timeout: the option when given, else our default when the conf
 * file left Ceph's own default (which waits for ever or 5 minutes).
 */
static int set_timeout(rados_t c, const char *key, uint64_t given, uint64_t ours,
                       const char *ceph_default)
{
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, given == UINT64_MAX ? ours : given);
    if (given == UINT64_MAX)
        return set_if_default(c, key, ceph_default, v);
    return rados_conf_set(c, key, v);
}

static int connect_error(int r, const struct rbd_where *w, uint64_t mount_s,
                         struct vdk_error **errp)
{
    const char *user = w->spec.user ? w->spec.user : "admin";
    switch (r) {
    case -ETIMEDOUT:
        return vdk_error_setf(errp, ETIMEDOUT, "rbd: no answer from the Ceph monitors "
                              "within %" PRIu64 " s (connect-timeout)", mount_s);
    case -ENOENT:
        return vdk_error_setf(errp, ENOENT, "rbd: no Ceph monitors to connect to (give "
                              "conf= or mon_host=, or set CEPH_CONF)");
    case -EACCES:
    case -EPERM:
    case -EKEYREJECTED:
    case -ENOTSUP:
        return vdk_error_setf(errp, EACCES, "rbd: the Ceph cluster refused authentication "
                              "of client.%s: %s", user, strerror(-r));
    default:
        return vdk_error_setf(errp, -r, "rbd: cannot connect to the Ceph cluster as "
                              "client.%s: %s", user, strerror(-r));
    }
}

int vdk_rbd_connect(const struct rbd_where *w, rados_t *cluster, rados_ioctx_t *io,
                    struct vdk_error **errp)
{
    const struct rbd_spec *s = &w->spec;
    rados_t c = NULL;
    int r = vdk_librbd_load(errp);
    if (r < 0) {
        vdk_error_prepend(errp, "rbd");
        return r;
    }
    r = rados_create(&c, s->user);
    if (r < 0)
        return vdk_error_setf(errp, -r, "rbd: cannot make a Ceph client for '%s': %s",
                              s->user ? s->user : "admin", strerror(-r));
    /* Client messages belong in the log, not on the user's terminal. */
    rados_conf_set(c, "log_to_stderr", "false");
    rados_conf_set(c, "err_to_stderr", "false");
    r = rados_conf_read_file(c, s->conf);
    if (r < 0 && s->conf) {
        vdk_error_setf(errp, -r, "rbd: cannot read the Ceph configuration '%s': %s",
                       s->conf, strerror(-r));
        goto fail;
    }
    /* (no conf file at all is fine when the name gives mon_host) */
    if ((r = set_timeout(c, "client_mount_timeout", w->connect_timeout,
                         RBD_CONNECT_TIMEOUT_DEFAULT, "300.000000")) < 0 ||
        (r = set_timeout(c, "rados_osd_op_timeout", w->op_timeout, RBD_OP_TIMEOUT_DEFAULT,
                         "0.000000")) < 0 ||
        (r = set_timeout(c, "rados_mon_op_timeout", w->op_timeout, RBD_OP_TIMEOUT_DEFAULT,
                         "0.000000")) < 0) {
        vdk_error_setf(errp, -r, "rbd: cannot set the timeouts: %s", strerror(-r));
        goto fail;
    }
    /* librbd hands every request to its work-queue thread so that an event
       loop calling it never blocks; our callers are threads that wait for
       the request anyway, so they submit it themselves (one thread
       hand-off less per request).  A conf file or name key may say
       otherwise. */
    set_if_default(c, "rbd_non_blocking_aio", "true", "false");
    /* cache=none turns librbd's cache off, as qemu does; otherwise the
       conf file's choice (Ceph's default: on, which qemu sets too). */
    if (w->no_cache)
        rados_conf_set(c, "rbd_cache", "false");
    for (int i = 0; i < s->n_pairs; i++) {
        r = rados_conf_set(c, s->key[i], s->value[i]);
        if (r == -ENOENT) {
            vdk_error_setf(errp, EINVAL, "rbd: unknown Ceph option '%.64s'", s->key[i]);
            goto fail;
        }
        if (r < 0) {
            vdk_error_setf(errp, EINVAL, "rbd: invalid value for Ceph option '%.64s': "
                           "'%.64s'", s->key[i], s->value[i]);
            goto fail;
        }
    }
    /* Without monitors librados would look them up in DNS and say so on
       stderr: fail first, in one line. */
    char mons[8] = "";
    if (rados_conf_get(c, "mon_host", mons, sizeof(mons)) != -ENAMETOOLONG && !mons[0]) {
        r = connect_error(-ENOENT, w, 0, errp);
        goto fail;
    }
    char cur[32] = "";
    double mount_s = 0;
    if (rados_conf_get(c, "client_mount_timeout", cur, sizeof(cur)) == 0)
        mount_s = strtod(cur, NULL);
    r = rados_connect(c);
    if (r < 0) {
        connect_error(r, w, mount_s > 0 ? (uint64_t)mount_s : 0, errp);
        goto fail;
    }
    r = rados_ioctx_create(c, s->pool, io);
    if (r < 0) {
        if (r == -ENOENT)
            vdk_error_setf(errp, ENOENT, "rbd: pool '%s' does not exist", s->pool);
        else
            vdk_error_setf(errp, -r, "rbd: cannot open pool '%s': %s", s->pool, strerror(-r));
        goto fail;
    }
    rados_ioctx_set_namespace(*io, s->ns ? s->ns : "");
    *cluster = c;
    return 0;
fail:
    rados_shutdown(c);
    return r < 0 ? r : -EIO;
}

void vdk_rbd_disconnect(rados_t cluster, rados_ioctx_t io)
{
    if (io)
        rados_ioctx_destroy(io);
    if (cluster)
        rados_shutdown(cluster);
}

/* Who holds the exclusive lock, for the message ("" when unknown). */
static void lock_owner(rbd_image_t img, char *buf, size_t len)
{
    char *owners[4];
    size_t n = 4;
    rbd_lock_mode_t mode;
    buf[0] = '\0';
    if (rbd_lock_get_owners(img, &mode, owners, &n) == 0 && n > 0) {
        snprintf(buf, len, " (held by %.80s)", owners[0]);
        rbd_lock_get_owners_cleanup(owners, n);
    }
}

int vdk_rbd_open_image(struct rbd_state *s, bool writable, rbd_image_t *out,
                       struct vdk_error **errp)
{
    const struct rbd_spec *sp = &s->where.spec;
    rbd_image_t img = NULL;
    int r;
    if (writable && sp->snap)
        return vdk_error_setf(errp, EROFS, "rbd: snapshot '%s' is read-only", s->display);
    r = writable ? rbd_open(s->io, sp->image, &img, NULL)
                 : rbd_open_read_only(s->io, sp->image, &img, sp->snap);
    if (r == -ENOENT && sp->snap && rbd_open_read_only(s->io, sp->image, &img, NULL) == 0) {
        rbd_close(img);
        return vdk_error_setf(errp, ENOENT, "rbd: image '%s': no snapshot '%s'", sp->image,
                              sp->snap);
    }
    if (r == -ENOENT)
        return vdk_error_setf(errp, ENOENT, "rbd: image '%s' does not exist in pool '%s%s%s'",
                              sp->image, sp->pool, sp->ns ? "/" : "", sp->ns ? sp->ns : "");
    if (r < 0)
        return vdk_error_setf(errp, -r, "rbd: cannot open image '%s': %s", s->display,
                              strerror(-r));
    uint64_t features = 0;
    rbd_get_features(img, &features);
    s->features = features;
    s->locked = false;
    if (writable && s->where.lock && (features & RBD_FEATURE_EXCLUSIVE_LOCK)) {
        r = rbd_lock_acquire(img, RBD_LOCK_MODE_EXCLUSIVE);
        if (r < 0) {
            char who[96];
            lock_owner(img, who, sizeof(who));
            rbd_close(img);
            if (r == -EROFS || r == -EBUSY || r == -EAGAIN)
                return vdk_error_setf(errp, EBUSY, "rbd: image '%s' is locked by another "
                                      "client%s", s->display, who);
            return vdk_error_setf(errp, -r, "rbd: cannot take the exclusive lock of '%s': %s",
                                  s->display, strerror(-r));
        }
        s->locked = true;
    }
    *out = img;
    return 0;
}

/* ---- open and close ---- */

static void rbd_state_free(struct rbd_state *s)
{
    if (s->image) {
        if (s->locked)
            rbd_lock_release(s->image);
        rbd_close(s->image);
    }
    vdk_rbd_disconnect(s->cluster, s->io);
    vdk_rbd_spec_clear(&s->where.spec);
    vdk_rbd_status_destroy(s);
    free(s->display);
    memset(s, 0, sizeof(*s));
}

static int rbdp_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct rbd_state *s = n->opaque;
    vdk_rbd_status_init(s);
    int r = vdk_rbd_where_from_opts(&s->where, opts, false, errp);
    if (r < 0)
        goto fail;
    if (!(s->display = vdk_rbd_spec_display(&s->where.spec))) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    if (!n->filename && asprintf(&n->filename, "rbd:%s", s->display) < 0) {
        n->filename = NULL;
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    s->where.no_cache = (flags & VDK_O_DIRECT) != 0;
    r = vdk_rbd_connect(&s->where, &s->cluster, &s->io, errp);
    if (r < 0)
        goto fail;
    r = vdk_rbd_open_image(s, flags & VDK_O_RDWR, &s->image, errp);
    if (r < 0)
        goto fail;
    uint64_t size = 0;
    rbd_image_info_t st;
    if ((r = rbd_get_size(s->image, &size)) < 0 || (r = rbd_stat(s->image, &st, sizeof(st))) < 0) {
        vdk_error_setf(errp, -r, "rbd: cannot get the size of '%s': %s", s->display,
                       strerror(-r));
        goto fail;
    }
    n->size = size;
    s->obj_size = st.obj_size ? st.obj_size : (4u << 20);
    n->cluster_size = st.obj_size <= (1u << 30) ? (uint32_t)st.obj_size : 0;
    n->limits.request_alignment = 1;
    n->limits.max_transfer = VDK_DEFAULT_MAX_TRANSFER;
    n->limits.opt_transfer = n->cluster_size && n->cluster_size <= VDK_DEFAULT_MAX_TRANSFER
                                 ? n->cluster_size : 0;
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    return 0;
fail:
    rbd_state_free(s);
    return r;
}

static void rbdp_close(struct vdk_node *n)
{
    rbd_state_free(n->opaque);
}

/* ---- the request path: one asynchronous request, waited for ---- */

enum rbd_op { RBD_READ, RBD_WRITE, RBD_DISCARD, RBD_ZERO, RBD_FLUSH };

/*
 * The completion has no callback: librbd runs the callbacks of its C API
 * on its work-queue thread (so that they never run concurrently), one
 * more thread hand-off per request.  Without one, the thread that
 * finishes the request wakes the waiter itself.
 */
static int rbd_request(struct vdk_node *n, enum rbd_op op, uint64_t offset, uint64_t bytes,
                       void *buf, int zero_flags)
{
    struct rbd_state *s = n->opaque;
    rbd_completion_t c;
    int r = rbd_aio_create_completion(NULL, NULL, &c);
    if (r < 0)
        return r;
    switch (op) {
    case RBD_READ:
        r = rbd_aio_read(s->image, offset, bytes, buf, c);
        break;
    case RBD_WRITE:
        r = rbd_aio_write(s->image, offset, bytes, buf, c);
        break;
    case RBD_DISCARD:
        r = rbd_aio_discard(s->image, offset, bytes, c);
        break;
    case RBD_ZERO:
        r = rbd_aio_write_zeroes(s->image, offset, bytes, c, zero_flags, 0);
        break;
    case RBD_FLUSH:
        r = rbd_aio_flush(s->image, c);
        break;
    }
    if (r < 0) {
        rbd_aio_release(c);
        return r;
    }
    rbd_aio_wait_for_complete(c);
    ssize_t ret = rbd_aio_get_return_value(c);
    rbd_aio_release(c);
    if (op == RBD_DISCARD || op == RBD_ZERO)
        vdk_rbd_status_forget(s); /* data may have become holes */
    if (ret < 0)
        return ret < -4095 ? -EIO : (int)ret;
    if (op == RBD_READ && (uint64_t)ret < bytes)
        memset((char *)buf + ret, 0, bytes - (uint64_t)ret); /* past the end */
    return 0;
}

static int rbdp_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                      unsigned flags)
{
    return rbd_request(n, RBD_READ, offset, bytes, buf, 0);
}

static int rbdp_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void *buf,
                       unsigned flags)
{
    return rbd_request(n, RBD_WRITE, offset, bytes, (void *)buf, 0);
}

static int rbdp_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              unsigned flags)
{
    /* Without MAY_UNMAP the zeros must stay allocated. */
    int zf = (flags & VDK_REQ_MAY_UNMAP) ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;
    return rbd_request(n, RBD_ZERO, offset, bytes, NULL, zf);
}

static int rbdp_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    return rbd_request(n, RBD_DISCARD, offset, bytes, NULL, 0);
}

static int rbdp_flush(struct vdk_node *n)
{
    return rbd_request(n, RBD_FLUSH, 0, 0, NULL, 0);
}

const struct vdk_driver vdk_driver_rbd = {
    .name = "rbd",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct rbd_state),
    .protocols = (const char *const[]){ "rbd:", NULL },
    .open_opts = rbd_open_opts,
    .create_opts = vdk_rbd_create_opts,
    .open = rbdp_open,
    .close = rbdp_close,
    .create = vdk_rbd_create,
    .pread = rbdp_pread,
    .pwrite = rbdp_pwrite,
    .pwrite_zeroes = rbdp_pwrite_zeroes,
    .discard = rbdp_discard,
    .flush = rbdp_flush,
    .block_status = vdk_rbd_block_status,
    .truncate = vdk_rbd_truncate,
    .reopen = vdk_rbd_reopen,
    .get_info = vdk_rbd_get_info,
    .snapshot_create = vdk_rbd_snapshot_create,
    .snapshot_goto = vdk_rbd_snapshot_goto,
    .snapshot_delete = vdk_rbd_snapshot_delete,
    .snapshot_list = vdk_rbd_snapshot_list,
};
