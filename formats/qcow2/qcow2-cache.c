/* SPDX-License-Identifier: MIT */
/*
 * qcow2: write-back cache of table clusters, one for L2 tables and one for
 * refcount blocks, least-recently-used eviction.  All calls hold s->lock.
 *
 * Ordering (rule 1 in qcow2.h): before a dirty L2 table is written, the
 * refcount cache is written and the file synced, so an L2 entry never
 * reaches the disk before the refcount of the cluster it names.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, uint32_t entries, uint32_t table_size)
{
    c->e = calloc(entries, sizeof(*c->e));
    if (!c->e)
        return -ENOMEM;
    c->n = entries;
    c->table_size = table_size;
    c->tick = 0;
    return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
    for (uint32_t i = 0; c->e && i < c->n; i++)
        vdk_blk_free(c->e[i].buf);
    free(c->e);
    c->e = NULL;
    c->n = 0;
}

static bool is_l2_cache(struct vdk_node *n, struct qcow2_cache *c)
{
    struct qcow2_state *s = n->opaque;
    return c == &s->l2_cache;
}

/* Write one entry back (after the dependency flush for L2 tables). */
static int write_entry(struct vdk_node *n, struct qcow2_cache *c,
                       struct qcow2_cache_entry *e)
{
    struct qcow2_state *s = n->opaque;
    int r;
    if (!e->dirty)
        return 0;
    if (is_l2_cache(n, c)) {
        if ((r = qcow2_cache_flush(n, &s->rb_cache)) < 0)
            return r;
        if (!s->lazy && (r = vdk_flush(n->file)) < 0)
            return r;
    }
    if (e->offset < s->cluster_size)
        return qcow2_signal_corruption(n, "table write to the header cluster");
    r = vdk_pwrite(n->file, e->buf, c->table_size, e->offset, 0);
    if (r == 0)
        e->dirty = false;
    return r;
}

int qcow2_cache_get(struct vdk_node *n, struct qcow2_cache *c, uint64_t offset,
                    bool fill, uint8_t **buf)
{
    struct qcow2_cache_entry *victim = NULL;
    for (uint32_t i = 0; i < c->n; i++) {
        struct qcow2_cache_entry *e = &c->e[i];
        if (e->offset == offset && e->buf && offset) {
            e->lru = ++c->tick;
            if (!fill)
                memset(e->buf, 0, c->table_size);
            *buf = e->buf;
            return 0;
        }
        if (!victim || e->lru < victim->lru) /* free slots have lru 0 */
            victim = e;
    }
    int r = write_entry(n, c, victim);
    if (r < 0)
        return r;
    if (!victim->buf && !(victim->buf = vdk_blk_alloc(c->table_size)))
        return -ENOMEM;
    victim->offset = 0;
    if (fill) {
        r = vdk_pread(n->file, victim->buf, c->table_size, offset, 0);
        if (r < 0)
            return r;
    } else {
        memset(victim->buf, 0, c->table_size);
    }
    victim->offset = offset;
    victim->dirty = false;
    victim->lru = ++c->tick;
    *buf = victim->buf;
    return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].offset == offset && c->e[i].buf) {
            c->e[i].dirty = true;
            return;
        }
}

int qcow2_cache_flush(struct vdk_node *n, struct qcow2_cache *c)
{
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++)
        any |= c->e[i].dirty;
    if (!any)
        return 0;
    if (is_l2_cache(n, c)) {
        /* One dependency flush for the whole batch. */
        struct qcow2_state *s = n->opaque;
        int r = qcow2_cache_flush(n, &s->rb_cache);
        if (r == 0 && !s->lazy)
            r = vdk_flush(n->file);
        if (r < 0)
            return r;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        struct qcow2_cache_entry *e = &c->e[i];
        if (!e->dirty)
            continue;
        struct qcow2_state *s = n->opaque;
        if (e->offset < s->cluster_size)
            return qcow2_signal_corruption(n, "table write to the header cluster");
        int r = vdk_pwrite(n->file, e->buf, c->table_size, e->offset, 0);
        if (r < 0)
            return r;
        e->dirty = false;
    }
    return 0;
}

void qcow2_cache_discard(struct qcow2_cache *c, uint64_t offset)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].offset == offset && c->e[i].buf) {
            c->e[i].offset = 0;
            c->e[i].dirty = false;
            c->e[i].lru = 0;
        }
}

int qcow2_flush_metadata(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    int r = qcow2_cache_flush(n, &s->l2_cache);
    if (r == 0)
        r = qcow2_cache_flush(n, &s->rb_cache);
    return r;
}
