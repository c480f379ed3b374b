/* SPDX-License-Identifier: MIT */
/*
 * qcow2: data writes.  In place where the cluster is allocated and owned;
 * otherwise an allocating write (new clusters, copy-on-write of a partial
 * cluster's old content, data written outside the metadata lock while the
 * guest range is listed in flight) or a compressed write.  Locking and
 * ordering: qcow2.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/qcow2/qcow2.h"
#include "formats/qcow2/qcow2-bitmap.h"

/* Longest run one allocating write handles at once. */
#define QCOW2_MAX_ALLOC_RUN (8u << 20)
#define QCOW2_MAX_ALLOC_CLUSTERS 256u

/* Whether an allocating write has guest clusters of [g0, g1) in flight. */
static bool inflight_overlaps(const struct qcow2_state *s, uint64_t g0, uint64_t g1)
{
    for (const struct qcow2_inflight *f = s->inflight; f; f = f->next)
        if (f->g0 < g1 && g0 < f->g1)
            return true;
    return false;
}

/* Wait, with s->lock held, until no allocating write of guest clusters
   in [g0, g1) is in flight. */
static void inflight_wait(struct qcow2_state *s, uint64_t g0, uint64_t g1)
{
    while (s->inflight && inflight_overlaps(s, g0, g1))
        pthread_cond_wait(&s->inflight_done, &s->lock);
}

static void inflight_remove(struct qcow2_state *s, struct qcow2_inflight *me)
{
    for (struct qcow2_inflight **p = &s->inflight; *p; p = &(*p)->next) {
        if (*p == me) {
            *p = me->next;
            break;
        }
    }
    pthread_cond_broadcast(&s->inflight_done);
}

/* Fill buf with guest bytes [a, b): the new data where [a, b) meets the
   write [offset, wend), the old content (copy-on-write) elsewhere. */
static int fill_bounce(struct vdk_node *n, uint64_t a, uint64_t b, uint64_t offset,
                       uint64_t wend, const uint8_t *data, uint8_t *buf)
{
    if (a >= b)
        return 0;
    uint64_t lo = a > offset ? a : offset, hi = vdk_min_u64(b, wend);
    if (lo >= hi)
        return qcow2_read_range(n, a, b - a, buf, true);
    int r = 0;
    if (a < lo)
        r = qcow2_read_range(n, a, lo - a, buf, true);
    if (r == 0 && lo < hi)
        memcpy(buf + (lo - a), data + (lo - offset), hi - lo);
    if (r == 0 && hi < b)
        r = qcow2_read_range(n, hi, b - hi, buf + (hi - a), true);
    return r;
}

/* Whether a cluster with (standard, not extended) L2 entry e reads as
   zeros: unallocated with no backing file, or a zero cluster. */
static bool entry_reads_zero(const struct vdk_node *n, const struct qcow2_state *s,
                             uint64_t e)
{
    if (e & QCOW2_OFLAG_COMPRESSED)
        return false;
    return (!e && !n->backing) || (s->version >= 3 && (e & QCOW2_OFLAG_ZERO));
}

/* Zero [off, off+len) of the data file: cheaply if the file can, else by
   writing zeros. */
static int zero_host(struct qcow2_state *s, uint64_t off, uint64_t len)
{
    if (!len)
        return 0;
    int r = vdk_pwrite_zeroes(s->data, off, len, VDK_REQ_NO_FALLBACK);
    if (r != -ENOTSUP)
        return r;
    uint8_t *z = calloc(1, len);
    if (!z)
        return -ENOMEM;
    r = vdk_pwrite(s->data, z, len, off, 0);
    free(z);
    return r;
}

/*
 * Allocating write of [offset, offset+bytes) starting in a cluster that is
 * not writable in place.  Called with s->lock held and returns with it
 * held, but drops it around the data write: the new host clusters are
 * allocated (refcounts raised) first, the data written unlocked while the
 * guest clusters are listed in s->inflight, and the L2 entries set after
 * the data, so a crash leaks at most.  Returns the bytes consumed, or
 * -EAGAIN when clusters would be freed and the caller lacks free_lock
 * exclusively.
 */
static int64_t alloc_write(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                           const uint8_t *data, bool excl, unsigned flags)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size, c0 = vdk_align_down(offset, cs);
    uint64_t tbl_end = (qcow2_l1_index(s, c0) + 1) << (s->cluster_bits + s->l2_bits);
    uint64_t end = vdk_min_u64(offset + bytes, tbl_end);
    uint64_t e0, bm0;
    int r = qcow2_get_l2_entry(n, c0, &e0, &bm0);
    if (r < 0)
        return r;

    /* Extended L2 with an owned host cluster: fill subclusters in place. */
    bool inplace = s->extended_l2 && qcow2_std_entry_has_host(s, e0) &&
                   ((e0 & QCOW2_OFLAG_COPIED) || s->data != n->file);
    bool sub = s->extended_l2 && !(e0 & QCOW2_OFLAG_COMPRESSED) &&
               (!qcow2_std_entry_has_host(s, e0) || inplace);
    uint64_t count = 1, old[QCOW2_MAX_ALLOC_CLUSTERS];
    old[0] = e0;
    if (!s->extended_l2) {
        /* Extend the run over following clusters that need allocation too. */
        uint64_t maxc = QCOW2_MAX_ALLOC_RUN >> s->cluster_bits;
        if (maxc > QCOW2_MAX_ALLOC_CLUSTERS)
            maxc = QCOW2_MAX_ALLOC_CLUSTERS;
        while (count < maxc && c0 + count * cs < end) {
            uint64_t e, bm;
            if ((r = qcow2_get_l2_entry(n, c0 + count * cs, &e, &bm)) < 0)
                return r;
            if (qcow2_std_entry_has_host(s, e) && (e & QCOW2_OFLAG_COPIED) &&
                !(e & QCOW2_OFLAG_ZERO))
                break;
            old[count++] = e;
        }
    }
    for (uint64_t i = 0; i < count && !excl && !inplace; i++)
        if (qcow2_entry_owns_host(s, old[i]) && !(sub && i == 0))
            return -EAGAIN;

    /* The range of host bytes to write: whole clusters, or whole
       subclusters when only part of an extended-L2 cluster changes. */
    uint64_t w0 = c0, w1 = c0 + count * cs;
    if (sub) {
        uint64_t sc = 1ull << s->sc_bits;
        w0 = vdk_align_down(offset, sc);
        w1 = vdk_min_u64(vdk_align_up(vdk_min_u64(end, c0 + cs), sc), c0 + cs);
    }
    uint64_t wend = vdk_min_u64(end, w1);
    /* New clusters whose old content around the write is zeros get those
       parts zeroed in the file (a cheap fallocate, as qemu does) instead of
       zeros copied through a buffer. */
    bool zero_cow = !s->crypt_method && !s->extended_l2 && !inplace &&
                    s->data == n->file &&
                    (offset == w0 || entry_reads_zero(n, s, old[0])) &&
                    (wend == w1 || entry_reads_zero(n, s, old[count - 1]));
    /* Otherwise a partial first or last cluster is completed in a bounce
       buffer with the old guest content (copy-on-write); whole clusters in
       between go straight from the caller's buffer.  Encryption bounces
       everything. */
    uint64_t hend = w0, tbeg = w1;
    if (zero_cow) {
        /* nothing to bounce */
    } else if (s->crypt_method) {
        hend = w1;
    } else {
        if (offset > w0)
            hend = vdk_min_u64(c0 + cs, w1);
        if (wend < w1)
            tbeg = w1 - hend < cs ? hend : w1 - cs;
        if (tbeg == hend) /* one bounced piece */
            hend = tbeg = w1;
    }
    uint8_t *buf = NULL;
    uint64_t blen = (hend - w0) + (w1 - tbeg);
    if (blen) {
        /* Not zeroed: every byte is filled below. */
        if (posix_memalign((void **)&buf, 4096, blen) != 0)
            return -ENOMEM;
        r = fill_bounce(n, w0, hend, offset, wend, data, buf);
        if (r == 0)
            r = fill_bounce(n, tbeg, w1, offset, wend, data, buf + (hend - w0));
    }
    int64_t host = 0;
    /* The L2 table first, so data clusters follow it as with qemu. */
    if (r == 0 && !inplace) {
        int64_t t = qcow2_get_l2_for_write(n, c0);
        if (t < 0)
            r = (int)t;
    }
    bool fresh = false; /* host clusters allocated here */
    if (r == 0) {
        if (inplace) {
            host = (int64_t)(e0 & QCOW2_OFFSET_MASK);
        } else if ((host = qcow2_alloc_data(n, c0, count)) < 0) {
            r = (int)host;
        } else {
            fresh = s->data == n->file;
        }
    }
    if (r == 0)
        r = qcow2_check_overlap(n, (uint64_t)host + (w0 - c0), w1 - w0);
    if (r == 0) {
        struct qcow2_inflight me = { c0, c0 + count * cs, s->inflight };
        s->inflight = &me;
        pthread_mutex_unlock(&s->lock);
        uint64_t h = (uint64_t)host - c0; /* host = guest + h */
        if (s->crypt_method) /* copied data too: IVs follow the host offset */
            r = qcow2_crypto_encrypt(n, h + w0, buf, w1 - w0);
        if (zero_cow) {
            r = zero_host(s, h + w0, offset - w0);
            if (r == 0)
                r = zero_host(s, h + wend, w1 - wend);
            if (r == 0)
                r = vdk_pwrite(s->data, data, wend - offset, h + offset, flags);
        } else {
            if (r == 0 && hend > w0)
                r = vdk_pwrite(s->data, buf, hend - w0, h + w0, 0);
            if (r == 0 && tbeg > hend)
                r = vdk_pwrite(s->data, data + (hend - offset), tbeg - hend, h + hend,
                               flags);
            if (r == 0 && w1 > tbeg)
                r = vdk_pwrite(s->data, buf + (hend - w0), w1 - tbeg, h + tbeg, 0);
        }
        pthread_mutex_lock(&s->lock);
        inflight_remove(s, &me);
    }
    free(buf);
    if (r < 0) {
        if (fresh) /* never linked: give the clusters back */
            qcow2_update_refcount(n, (uint64_t)host, count * cs, -1);
        return r;
    }

    /* Entries after the data (rule 1 is kept by the cache). */
    for (uint64_t i = 0; i < count; i++) {
        uint64_t e = ((uint64_t)host + i * cs) | QCOW2_OFLAG_COPIED, bm = 0;
        if (s->extended_l2) {
            if (sub) {
                unsigned a = (unsigned)((w0 - c0) >> s->sc_bits);
                unsigned b = (unsigned)((w1 - c0) >> s->sc_bits);
                uint64_t mask = (b - a == 32 ? 0xffffffffull : ((1ull << (b - a)) - 1) << a);
                uint64_t ecur, bmcur; /* as it is now, not as it was */
                if ((r = qcow2_get_l2_entry(n, c0, &ecur, &bmcur)) < 0)
                    return r;
                bm = (bmcur | mask) & ~(mask << 32);
            } else {
                bm = 0xffffffffull;
            }
        }
        if ((r = qcow2_set_l2_entry(n, c0 + i * cs, e, bm)) < 0)
            return r;
    }
    if (!inplace && !sub && (r = qcow2_free_old_entries(n, old, count)) < 0)
        return r;
    return (int64_t)(wend - offset);
}

static int write_compressed(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                            const uint8_t *data);

int qcow2_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                 const void *vbuf, unsigned flags)
{
    struct qcow2_state *s = n->opaque;
    const uint8_t *buf = vbuf;
    int mr = qcow2_bitmaps_mark(n, offset, bytes);
    if (mr < 0)
        return mr;
    if (flags & VDK_REQ_COMPRESSED)
        return write_compressed(n, offset, bytes, buf);
    flags = 0; /* nothing goes down to the data file */
    bool excl = false;
    while (bytes) {
        struct qcow2_mapping m;
        int64_t done;
        if (excl)
            pthread_rwlock_wrlock(&s->free_lock);
        else
            pthread_rwlock_rdlock(&s->free_lock);
        pthread_mutex_lock(&s->lock);
        /* Clusters being allocated by another write: wait for their entries. */
        inflight_wait(s, vdk_align_down(offset, s->cluster_size), offset + bytes);
        int r = s->corrupt ? -EIO : qcow2_get_mapping(n, offset, bytes, &m);
        if (r == 0 && m.type == QCOW2_MAP_NORMAL && m.copied) {
            /* In place, outside the metadata lock. */
            r = qcow2_check_overlap(n, m.host, m.bytes);
            pthread_mutex_unlock(&s->lock);
            if (r == 0)
                r = s->crypt_method ? qcow2_crypto_pwrite(n, m.host, buf, m.bytes)
                                    : vdk_pwrite(s->data, buf, m.bytes, m.host, flags);
            done = m.bytes;
        } else {
            done = r < 0 ? r : alloc_write(n, offset, bytes, buf, excl, flags);
            pthread_mutex_unlock(&s->lock);
            r = done < 0 ? (int)done : 0;
        }
        pthread_rwlock_unlock(&s->free_lock);
        if (r == -EAGAIN && !excl) {
            excl = true;
            continue;
        }
        if (r < 0)
            return r;
        excl = false;
        offset += (uint64_t)done;
        buf += done;
        bytes -= (uint64_t)done;
    }
    return 0;
}

/* Clusters one compressed write handles per pass (bounds its buffer). */
#define COMPRESS_BATCH 32

/*
 * Allocate host bytes for the compressed clusters of one pass (clen[i] < 0:
 * not compressed, skipped).  Called with s->lock held.  No cluster is freed
 * here, so free_lock is not needed: the allocator only hands out clusters
 * whose refcount is zero, which no reader can still be using.
 */
static int batch_alloc(struct vdk_node *n, uint64_t offset, int k, const int64_t *clen,
                       uint64_t *host)
{
    struct qcow2_state *s = n->opaque;
    if (s->corrupt)
        return -EIO;
    for (int i = 0; i < k; i++) {
        if (clen[i] < 0)
            continue;
        int64_t t = qcow2_get_l2_for_write(n, offset + (uint64_t)i * s->cluster_size);
        if (t < 0)
            return (int)t;
        int64_t h = qcow2_alloc_bytes(n, (uint64_t)clen[i]);
        if (h < 0)
            return (int)h;
        int r = qcow2_check_overlap(n, (uint64_t)h, (uint64_t)clen[i]);
        if (r < 0)
            return r;
        host[i] = (uint64_t)h;
    }
    return 0;
}

/*
 * Point the L2 entries of one pass at their compressed data, once no
 * allocating write of them is in flight.  Called with s->lock held (and
 * free_lock exclusively when excl).  Returns -EAGAIN
 * when an entry replaced owns a host cluster and excl is false: freeing
 * it needs free_lock, so the caller takes it and calls again.
 */
static int batch_commit(struct vdk_node *n, uint64_t offset, int k, const int64_t *clen,
                        const uint64_t *host, bool excl)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cur[COMPRESS_BATCH];
    int m = 0;
    /* An allocating write of these clusters in flight sets its entries
       over ours afterwards and frees only the entries it saw before, so
       ours would leak: wait for it, then replace (and free) its entries. */
    inflight_wait(s, offset, offset + (uint64_t)k * s->cluster_size);
    if (s->corrupt)
        return -EIO;
    for (int i = 0; i < k; i++) {
        if (clen[i] < 0)
            continue;
        uint64_t g = offset + (uint64_t)i * s->cluster_size, bm;
        int r = qcow2_get_l2_entry(n, g, &cur[m], &bm);
        if (r < 0)
            return r;
        if (qcow2_entry_owns_host(s, cur[m]) && !excl)
            return -EAGAIN; /* nothing set yet: the retry starts over */
        m++;
    }
    m = 0;
    for (int i = 0; i < k; i++) {
        if (clen[i] < 0)
            continue;
        uint64_t g = offset + (uint64_t)i * s->cluster_size;
        uint64_t nb = ((host[i] + (uint64_t)clen[i] - 1) >> 9) - (host[i] >> 9);
        uint64_t e = QCOW2_OFLAG_COMPRESSED | nb << s->csize_shift | host[i];
        int r = qcow2_set_l2_entry(n, g, e, 0);
        if (r < 0)
            return r;
        m++;
    }
    return qcow2_free_old_entries(n, cur, (uint64_t)m);
}

/* Write the compressed streams of one pass, one write per run that the
   allocator placed back to back (streams are packed in out in order). */
static int batch_write(struct vdk_node *n, int k, const int64_t *clen, const uint64_t *host,
                       const uint8_t *out)
{
    int i = 0;
    uint64_t pos = 0;
    while (i < k) {
        if (clen[i] < 0) {
            i++;
            continue;
        }
        uint64_t start = host[i], len = (uint64_t)clen[i], from = pos;
        pos += (uint64_t)clen[i];
        int j = i + 1;
        for (; j < k && clen[j] >= 0 && host[j] == start + len; j++) {
            len += (uint64_t)clen[j];
            pos += (uint64_t)clen[j];
        }
        while (j < k && clen[j] < 0)
            j++;
        int r = vdk_pwrite(n->file, out + from, len, start, 0);
        if (r < 0)
            return r;
        i = j;
    }
    return 0;
}

/*
 * Compressed write of whole clusters.  Each pass compresses up to
 * COMPRESS_BATCH clusters in the caller's thread outside every lock,
 * allocates their host bytes under s->lock once, writes the streams
 * without locks (few writes: consecutive streams are usually adjacent),
 * then sets the L2 entries under s->lock once.  free_lock is taken only
 * when an entry replaced owns a cluster that must be freed; a convert
 * into a new image never needs it.  (Taking it for every cluster made
 * every worker wait whenever one holding it was descheduled on a loaded
 * host.)  Data reaches the file before the entries that point at it.
 */
static int write_compressed(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                            const uint8_t *data)
{
    struct qcow2_state *s = n->opaque;
    uint64_t cs = s->cluster_size;
    if (q_offset_in_cluster(s, offset) ||
        (q_offset_in_cluster(s, bytes) && offset + bytes != s->size))
        return -EINVAL;
    if (s->data != n->file || s->crypt_method) /* encrypted: never compressed */
        return -ENOTSUP;
    uint64_t nclu = (bytes + cs - 1) / cs;
    int per = nclu < COMPRESS_BATCH ? (int)nclu : COMPRESS_BATCH;
    uint8_t *in = NULL, *out = malloc((size_t)per * cs);
    int r = out ? 0 : -ENOMEM;
    while (r == 0 && bytes) {
        int64_t clen[COMPRESS_BATCH];
        uint64_t host[COMPRESS_BATCH], pos = 0, done = 0;
        int k = 0;
        for (; k < COMPRESS_BATCH && done < bytes && r == 0; k++) {
            uint64_t len = vdk_min_u64(bytes - done, cs);
            const uint8_t *src = data + done;
            if (len < cs) { /* the image's last cluster: pad it with zeros */
                if (!in && !(in = malloc(cs))) {
                    r = -ENOMEM;
                    break;
                }
                memcpy(in, src, len);
                memset(in + len, 0, cs - len);
                src = in;
            }
            clen[k] = qcow2_compress(s->compression_type, src, cs, out + pos, cs - 1);
            if (clen[k] == -ENOSPC) /* incompressible: stored as it is */
                r = qcow2_pwrite(n, offset + done, len, data + done, 0);
            else if (clen[k] < 0)
                r = (int)clen[k];
            else
                pos += (uint64_t)clen[k];
            done += len;
        }
        if (r == 0 && pos) {
            pthread_mutex_lock(&s->lock);
            r = batch_alloc(n, offset, k, clen, host);
            pthread_mutex_unlock(&s->lock);
            if (r == 0)
                r = batch_write(n, k, clen, host, out);
            if (r == 0) {
                pthread_mutex_lock(&s->lock);
                r = batch_commit(n, offset, k, clen, host, false);
                pthread_mutex_unlock(&s->lock);
            }
            if (r == -EAGAIN) {
                /* The entries replaced own clusters: free them under
                   free_lock, so no reader still uses them. */
                pthread_rwlock_wrlock(&s->free_lock);
                pthread_mutex_lock(&s->lock);
                r = batch_commit(n, offset, k, clen, host, true);
                pthread_mutex_unlock(&s->lock);
                pthread_rwlock_unlock(&s->free_lock);
            }
        }
        offset += done;
        data += done;
        bytes -= done;
    }
    free(in);
    free(out);
    return r;
}

