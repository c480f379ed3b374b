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
    c->nbuckets = 1;
    while (c->nbuckets < entries * 2)
        c->nbuckets <<= 1;
    c->head = malloc(c->nbuckets * sizeof(*c->head));
    if (!c->e || !c->head) {
        free(c->e);
        free(c->head);
        c->e = NULL;
        c->head = NULL;
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < c->nbuckets; i++)
        c->head[i] = -1;
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
    free(c->head);
    c->e = NULL;
    c->head = NULL;
    c->n = 0;
}

static uint32_t bucket(const struct qcow2_cache *c, uint64_t offset)
{
    return (uint32_t)((offset / c->table_size) * 0x9e3779b97f4a7c15ull >> 32) &
           (c->nbuckets - 1);
}

static struct qcow2_cache_entry *lookup(struct qcow2_cache *c, uint64_t offset)
{
    for (int32_t i = c->head[bucket(c, offset)]; i >= 0; i = c->e[i].next)
        if (c->e[i].offset == offset)
            return &c->e[i];
    return NULL;
}

static void unhash(struct qcow2_cache *c, struct qcow2_cache_entry *e)
{
    if (!e->offset)
        return;
    int32_t idx = (int32_t)(e - c->e), *p = &c->head[bucket(c, e->offset)];
    while (*p >= 0 && *p != idx)
        p = &c->e[*p].next;
    if (*p == idx)
        *p = e->next;
    e->offset = 0;
}

static void hash_in(struct qcow2_cache *c, struct qcow2_cache_entry *e, uint64_t offset)
{
    uint32_t b = bucket(c, offset);
    e->offset = offset;
    e->next = c->head[b];
    c->head[b] = (int32_t)(e - c->e);
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
    struct qcow2_cache_entry *e = offset ? lookup(c, offset) : NULL, *victim = NULL;
    if (e) {
        e->lru = ++c->tick;
        if (!fill)
            memset(e->buf, 0, c->table_size);
        *buf = e->buf;
        return 0;
    }
    for (uint32_t i = 0; i < c->n; i++)
        if (!victim || c->e[i].lru < victim->lru) /* free slots have lru 0 */
            victim = &c->e[i];
    int r = write_entry(n, c, victim);
    if (r < 0)
        return r;
    if (!victim->buf && !(victim->buf = vdk_blk_alloc(c->table_size)))
        return -ENOMEM;
    unhash(c, victim);
    victim->lru = 0;
    if (fill) {
        r = vdk_pread(n->file, victim->buf, c->table_size, offset, 0);
        if (r < 0)
            return r;
    } else {
        memset(victim->buf, 0, c->table_size);
    }
    hash_in(c, victim, offset);
    victim->dirty = false;
    victim->lru = ++c->tick;
    *buf = victim->buf;
    return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, uint64_t offset)
{
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (e)
        e->dirty = true;
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
    struct qcow2_cache_entry *e = lookup(c, offset);
    if (e) {
        unhash(c, e);
        e->dirty = false;
        e->lru = 0;
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
