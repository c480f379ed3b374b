/* SPDX-License-Identifier: MIT */
/*
 * Backing-chain operations: reopen, commit and rebase.  They run on the
 * control thread with no I/O in flight (see vdk/block.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "vdk/ratelimit.h"

/* Copy granularity: big enough to stream, small enough to bound memory. */
#define CHAIN_CHUNK (2u << 20)
/* Rebase compares in units of this size and writes only differing ones. */
#define REBASE_UNIT (64u * 1024)

int vdk_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    bool want_rw = flags & VDK_O_RDWR;
    if (want_rw == !n->read_only)
        return 0;
    unsigned nflags = (n->open_flags & ~VDK_O_RDWR) | (flags & VDK_O_RDWR);
    int r = 0;
    if (!want_rw && n->drv->inactivate && (r = n->drv->inactivate(n)) < 0)
        return vdk_error_setf_errno(errp, r, "could not write back '%s'", n->filename);
    if (!want_rw && (r = vdk_flush(n)) < 0)
        return vdk_error_setf_errno(errp, r, "could not flush '%s'", n->filename);
    if (n->drv->kind == VDK_DRV_PROTOCOL) {
        if (!n->drv->reopen)
            return vdk_error_setf(errp, ENOTSUP, "cannot reopen '%s' %s", n->filename,
                                  want_rw ? "read-write" : "read-only");
        r = n->drv->reopen(n, nflags, errp);
    } else if (!want_rw) {
        /* To read-only: the driver writes its last metadata (a log closed,
           an in-use flag cleared) while its file is still writable. */
        if (n->drv->reopen && (r = n->drv->reopen(n, nflags, errp)) < 0)
            return r;
        if (n->file && (r = vdk_reopen(n->file, flags, errp)) < 0) {
            if (n->drv->reopen)
                (void)n->drv->reopen(n, n->open_flags, NULL);
            return r;
        }
    } else {
        if (n->file && (r = vdk_reopen(n->file, flags, errp)) < 0)
            return r;
        if (n->drv->reopen && (r = n->drv->reopen(n, nflags, errp)) < 0) {
            if (n->file)
                (void)vdk_reopen(n->file, n->open_flags, NULL);
            return r;
        }
    }
    if (r == 0) {
        n->read_only = !want_rw;
        n->open_flags = nflags;
    }
    return r;
}

/* The name by which the chain above refers to `base` (for the new link). */
static struct vdk_node *parent_of(struct vdk_node *top, struct vdk_node *base)
{
    for (struct vdk_node *c = top; c; c = c->backing)
        if (c->backing == base)
            return c;
    return NULL;
}

/* The caller's options, as far as its struct_size reaches; zeros past it. */
static struct vdk_chain_opts chain_opts(const struct vdk_chain_opts *in)
{
    struct vdk_chain_opts o = { 0 };
    if (in)
        memcpy(&o, in, vdk_min_u64(in->struct_size, sizeof(o)));
    o.struct_size = sizeof(o);
    return o;
}

static int copy_range(struct vdk_node *top, struct vdk_node *base, uint64_t off,
                      uint64_t len, uint8_t *buf, struct vdk_ratelimit *limit)
{
    while (len) {
        uint64_t c = vdk_min_u64(len, CHAIN_CHUNK);
        int r = vdk_pread(top, buf, c, off, 0);
        if (r < 0)
            return r;
        vdk_ratelimit_wait(limit, c);
        r = vdk_buffer_is_zero(buf, c) ? vdk_pwrite_zeroes(base, off, c, VDK_REQ_MAY_UNMAP)
                                       : vdk_pwrite(base, buf, c, off, 0);
        if (r < 0)
            return r;
        off += c;
        len -= c;
    }
    return 0;
}

int vdk_commit(struct vdk_node *top, struct vdk_node *base, bool keep_top,
               const struct vdk_chain_opts *copts, struct vdk_error **errp)
{
    struct vdk_chain_opts o = chain_opts(copts);
    if (!top->backing)
        return vdk_error_setf(errp, EINVAL, "image '%s' has no backing file to commit into",
                              top->filename);
    if (!base)
        base = top->backing;
    struct vdk_node *parent = parent_of(top, base);
    if (!parent || base == top)
        return vdk_error_setf(errp, EINVAL, "'%s' is not in the backing chain of '%s'",
                              base->filename, top->filename);
    if (!keep_top && !top->drv->make_empty)
        return vdk_error_setf(errp, ENOTSUP, "format '%s' cannot empty '%s' after the "
                              "commit; use -d to keep its data", top->drv->name,
                              top->filename);
    int64_t len = vdk_get_length(top), blen = vdk_get_length(base);
    if (len < 0 || blen < 0)
        return vdk_error_setf_errno(errp, (int)(len < 0 ? len : blen),
                                    "could not get image sizes");
    int r = vdk_reopen(base, VDK_O_RDWR, errp);
    if (r < 0) {
        vdk_error_prepend(errp, "cannot commit into '%s'", base->filename);
        return r;
    }
    uint8_t *buf = NULL;
    if (blen < len && (r = vdk_truncate(base, (uint64_t)len, VDK_PREALLOC_OFF, false, errp)) < 0)
        goto out;
    buf = vdk_blk_alloc(CHAIN_CHUNK);
    if (!buf) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    for (uint64_t off = 0; off < (uint64_t)len;) {
        uint64_t pnum = 0;
        int st = vdk_block_status_above(top, base, off, vdk_min_u64((uint64_t)len - off, 1u << 30),
                                        &pnum, NULL, NULL, NULL);
        if (st < 0) {
            r = vdk_error_setf_errno(errp, st, "could not read the allocation of '%s' at "
                                     "offset %" PRIu64, top->filename, off);
            goto out;
        }
        if (st & VDK_BS_ALLOCATED) {
            if ((st & VDK_BS_ZERO) && !(st & VDK_BS_DATA)) {
                vdk_ratelimit_wait(o.limit, pnum); /* as qemu: zeros count too */
                r = vdk_pwrite_zeroes(base, off, pnum, VDK_REQ_MAY_UNMAP);
            } else {
                r = copy_range(top, base, off, pnum, buf, o.limit);
            }
            if (r < 0) {
                r = vdk_error_setf_errno(errp, r, "could not copy offset %" PRIu64
                                         " into '%s'", off, base->filename);
                goto out;
            }
        }
        off += pnum;
        if (o.progress)
            o.progress(off, (uint64_t)len, o.opaque);
    }
    if ((r = vdk_flush(base)) < 0) {
        r = vdk_error_setf_errno(errp, r, "could not flush '%s'", base->filename);
        goto out;
    }
    if (parent == top && top->drv->relink_after_commit && top->backing_file) {
        /* The same link written again: it follows the parent's new state. */
        char *bf = strdup(top->backing_file);
        char *bfmt = top->backing_fmt ? strdup(top->backing_fmt) : NULL;
        r = bf && (bfmt || !top->backing_fmt)
            ? vdk_change_backing_file(top, bf, bfmt, errp)
            : vdk_error_setf(errp, ENOMEM, "out of memory");
        free(bf);
        free(bfmt);
        if (r < 0)
            goto out;
    } else if (parent != top) {
        /* Intermediate images leave the chain: top now sits on base. */
        r = vdk_change_backing_file(top, parent->backing_file, parent->backing_fmt
                                    ? parent->backing_fmt : base->drv->name, errp);
        if (r < 0)
            goto out;
        vdk_node_ref(base);
        vdk_node_unref(top->backing);
        top->backing = base;
    }
    if (!keep_top) {
        r = top->drv->make_empty(top, errp);
        if (r < 0)
            vdk_error_prepend(errp, "image committed, but emptying '%s' failed",
                              top->filename);
    }
out:
    vdk_blk_free(buf);
    (void)vdk_reopen(base, 0, NULL);
    return r;
}

/* Read [off, off+len) of a backing candidate; past its end reads zeros. */
static int read_or_zero(struct vdk_node *n, uint8_t *buf, uint64_t len, uint64_t off)
{
    int64_t nlen = n ? vdk_get_length(n) : 0;
    if (nlen < 0)
        return (int)nlen;
    uint64_t avail = off < (uint64_t)nlen ? vdk_min_u64(len, (uint64_t)nlen - off) : 0;
    if (avail) {
        int r = vdk_pread(n, buf, avail, off, 0);
        if (r < 0)
            return r;
    }
    memset(buf + avail, 0, len - avail);
    return 0;
}

/* One safe rebase: the old chain is read through top, the new backing
   file through nb (NULL: none). */
struct rebase_job {
    struct vdk_node *top, *nb;
    uint8_t *old, *nw;       /* CHAIN_CHUNK each */
    uint64_t len;            /* top's length */
    uint64_t unit;           /* compared and written in units of this,
                                on a grid of it */
    bool compress;           /* whole units are clusters, written compressed */
};

static int rebase_range(struct rebase_job *rj, uint64_t off, uint64_t len)
{
    while (len) {
        /* Chunks on the CHAIN_CHUNK grid, so units never straddle two. */
        uint64_t c = vdk_min_u64(len, CHAIN_CHUNK - off % CHAIN_CHUNK);
        int r = vdk_pread(rj->top, rj->old, c, off, 0); /* through the old chain */
        if (r == 0)
            r = read_or_zero(rj->nb, rj->nw, c, off);
        for (uint64_t u = 0; r == 0 && u < c;) {
            uint64_t at = off + u;
            uint64_t ul = vdk_min_u64(rj->unit - at % rj->unit, c - u);
            if (memcmp(rj->old + u, rj->nw + u, ul) != 0) {
                /* A compressed write replaces a whole cluster (or the
                   image's last, shorter one); a part of one (the rest is
                   allocated in top) is written as it is. */
                bool whole = at % rj->unit == 0 && (ul == rj->unit || at + ul == rj->len);
                r = vdk_pwrite(rj->top, rj->old + u, ul, at,
                               rj->compress && whole ? VDK_REQ_COMPRESSED : 0);
            }
            u += ul;
        }
        if (r < 0)
            return r;
        off += c;
        len -= c;
    }
    return 0;
}

int vdk_rebase(struct vdk_node *top, const char *new_backing, const char *new_fmt,
               bool unsafe, const struct vdk_chain_opts *copts, struct vdk_error **errp)
{
    struct vdk_chain_opts o = chain_opts(copts);
    if (new_backing && !*new_backing)
        new_backing = NULL;
    if (top->read_only)
        return vdk_error_setf(errp, EPERM, "image '%s' is read-only", top->filename);
    struct rebase_job rj = { .top = top, .unit = REBASE_UNIT, .compress = o.compress };
    if (o.compress) {
        uint32_t cs = vdk_node_cluster_size(top);
        if (!(vdk_node_write_flags(top) & VDK_REQ_COMPRESSED) || !cs || cs > CHAIN_CHUNK ||
            CHAIN_CHUNK % cs)
            return vdk_error_setf(errp, ENOTSUP, "Compression not supported for this "
                                  "file format");
        rj.unit = cs;
    }
    if (unsafe)
        return vdk_change_backing_file(top, new_backing, new_backing ? new_fmt : NULL, errp);

    struct vdk_node *nb = NULL;
    uint8_t *old = NULL, *nw = NULL;
    int r = 0;
    if (new_backing) {
        char *path = vdk_path_combine(top->filename, new_backing);
        if (!path)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        r = vdk_open(&nb, path, new_fmt, NULL, 0, errp);
        free(path);
        if (r < 0) {
            vdk_error_prepend(errp, "could not open new backing file '%s'", new_backing);
            return r;
        }
    }
    int64_t len = vdk_get_length(top);
    old = vdk_blk_alloc(CHAIN_CHUNK);
    nw = vdk_blk_alloc(CHAIN_CHUNK);
    if (len < 0 || !old || !nw) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    rj.nb = nb;
    rj.old = old;
    rj.nw = nw;
    rj.len = (uint64_t)len;
    for (uint64_t off = 0; off < (uint64_t)len;) {
        uint64_t pnum = 0;
        int st = vdk_block_status(top, off, vdk_min_u64((uint64_t)len - off, 1u << 30),
                                  &pnum, NULL, NULL);
        if (st < 0) {
            r = vdk_error_setf_errno(errp, st, "could not read the allocation of '%s'",
                                     top->filename);
            goto out;
        }
        if (!(st & VDK_BS_ALLOCATED) && (r = rebase_range(&rj, off, pnum)) < 0) {
            r = vdk_error_setf_errno(errp, r, "could not copy offset %" PRIu64 " into '%s'",
                                     off, top->filename);
            goto out;
        }
        off += pnum;
        if (o.progress)
            o.progress(off, (uint64_t)len, o.opaque);
    }
    if ((r = vdk_flush(top)) < 0) {
        r = vdk_error_setf_errno(errp, r, "could not flush '%s'", top->filename);
        goto out;
    }
    r = vdk_change_backing_file(top, new_backing,
                                nb ? (new_fmt ? new_fmt : nb->drv->name) : NULL, errp);
    if (r == 0) {
        vdk_node_unref(top->backing);
        top->backing = nb;
        nb = NULL;
    }
out:
    vdk_blk_free(old);
    vdk_blk_free(nw);
    if (nb)
        vdk_node_unref(nb);
    return r;
}
