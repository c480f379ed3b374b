/* SPDX-License-Identifier: MIT */
/*
 * The convert engine: a pool of threads doing blocking I/O on the shared
 * source and target nodes.
 *
 * One planner, run under the job lock by whichever worker needs work,
 * walks the concatenated sources with block status and hands out chunks:
 * a status run (DATA, ZERO, or BACKING when the target keeps the source's
 * backing file) cut to the copy buffer size (data: to read_size()).  Workers then, outside the
 * lock, read the chunk (DATA only), find the zero runs in it, compress
 * (the driver compresses in the caller's thread, so -c runs in parallel),
 * and write.  Without -W a worker waits for its turn before writing, so
 * the target is written in offset order as with qemu-img; reads and zero
 * detection still overlap.  With -c writes never wait, so compression
 * runs in all workers at once.
 *
 * Zero runs inside data become holes with qemu-img's rule (see
 * sector_run), applied on the same 2 MiB buffer boundaries, so that the
 * target's allocation map is identical to qemu-img's output.
 *
 * Zero copy: where block status says a data run is stored as it is
 * (OFFSET_VALID | PLAIN) in a node that can be mapped (vdk_node_map: a
 * locked file opened with map=on), the chunk is zero-checked and written
 * straight from the mapping, which saves the copy from the page cache
 * into a buffer.
 * Should the library report the mapping damaged afterwards (the file was
 * truncated by a process ignoring the locks), the chunk is read and
 * written again the ordinary way.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"
#include "vdk/ratelimit.h"

/* Block status is asked for at most this much at a time (qemu's request
   limit, which also splits its status runs). */
#define STATUS_MAX ((uint64_t)(INT32_MAX / CVT_SECTOR) * CVT_SECTOR)

enum chunk_kind { CHUNK_DATA, CHUNK_ZERO, CHUNK_BACKING };

struct chunk {
    uint64_t seq, pos, n;
    enum chunk_kind kind;
    size_t si;           /* source of the chunk's first byte */
    struct vdk_node *map_node; /* data stored as is at map_off of this
                                  node (NULL: read it) */
    uint64_t map_off;
};

struct job {
    const struct cvt_params *p;
    pthread_mutex_t lock;
    /* In-order mode: the chunk with seq S waits on turn[S % nturn].  At
       most one chunk per worker is planned and not yet written, and seqs
       are planned consecutively, so the waiting seqs lie in
       [next_write, next_write + workers) and never share a slot: each
       advance wakes exactly the one worker whose turn it is, instead of
       waking every worker to find it (which cost about a tenth of a
       raw->raw convert's CPU in wake-ups). */
    pthread_cond_t *turn;
    unsigned nturn;
    /* planner state */
    uint64_t pos;            /* next byte to plan */
    size_t si;               /* source holding pos */
    uint64_t src_base;       /* offset of src[si] in the stream */
    uint64_t run_start, run_end; /* the current status run */
    enum chunk_kind run_kind;
    struct vdk_node *run_node; /* run stored as is in this node at run_map */
    uint64_t run_map;
    uint64_t next_seq;
    /* writer state */
    uint64_t next_write;     /* seq allowed to write (in-order mode) */
    uint64_t done;           /* bytes finished, for progress */
    int error;               /* first error, -errno; 0 none */
    const uint8_t *zero_buf; /* CVT_BUF_SIZE zero bytes for -S 0 */
    uint64_t data_max;       /* largest data chunk (read_size()) */
};

/* Data chunks larger than the copy buffer are read at once where the
   sources' storage prefers larger transfers (an rbd object: 4 MiB, each
   read costing the cluster one operation however small), then scanned
   and written in CVT_BUF_SIZE steps as before, so the target's
   allocation stays qemu-img's. */
#define CVT_READ_MAX (4 * (uint64_t)CVT_BUF_SIZE)

static uint64_t read_size(const struct cvt_params *p)
{
    uint64_t best = CVT_BUF_SIZE;
    if (p->compressed)
        return best; /* chunks follow the target's clusters */
    for (size_t i = 0; i < p->nsrc; i++) {
        uint64_t opt = vdk_node_storage_opt_transfer(p->src[i].node);
        while (best < opt && best < CVT_READ_MAX)
            best *= 2;
    }
    return best;
}

int cvt_default_workers(void)
{
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                              : sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    return cpus * 2 > CVT_DEFAULT_WORKERS ? CVT_DEFAULT_WORKERS : (int)cpus * 2;
}

int cvt_read(struct vdk_node *n, uint64_t len, void *buf, uint64_t bytes,
             uint64_t off)
{
    uint64_t in = 0;
    if (off < len)
        in = bytes < len - off ? bytes : len - off;
    if (in) {
        int r = vdk_pread(n, buf, in, off, 0);
        if (r < 0)
            return r;
    }
    if (in < bytes)
        memset((uint8_t *)buf + in, 0, bytes - in);
    return 0;
}

int cvt_status(struct vdk_node *n, struct vdk_node *base, uint64_t len,
               uint64_t off, uint64_t bytes, uint64_t *pnum, uint64_t *map,
               struct vdk_node **file)
{
    if (off >= len) {
        *pnum = bytes;
        if (map)
            *map = 0;
        if (file)
            *file = NULL;
        return VDK_BS_ZERO | VDK_BS_ALLOCATED | VDK_BS_EOF;
    }
    uint64_t want = bytes;
    if (bytes > len - off)
        bytes = len - off;
    int st = vdk_block_status_above(n, base, off, bytes, pnum, map, file, NULL);
    /* A run reaching the real end also covers the sector round-up after it
       (which reads as zeros), as qemu-img sees it: a zero run then stays
       one run instead of ending in a partial sector. */
    if (st >= 0 && off + *pnum == len) {
        uint64_t end = cvt_round_len(len);
        *pnum = (end - off < want ? end - off : want);
    }
    return st;
}

/* Error reporting happens once, by the thread that failed first. */
static void job_fail(struct job *j, int err, const char *what, uint64_t at)
{
    pthread_mutex_lock(&j->lock);
    if (!j->error) {
        j->error = err;
        progress_abort(j->p->progress);
        img_error("error while %s at byte %" PRIu64 ": %s", what, at, strerror(-err));
    }
    for (unsigned i = 0; i < j->nturn; i++)
        pthread_cond_broadcast(&j->turn[i]);
    pthread_mutex_unlock(&j->lock);
}

/* Start a new status run at j->pos.  Called with the lock held. */
static int plan_status(struct job *j)
{
    const struct cvt_params *p = j->p;
    const struct cvt_source *s = &p->src[j->si];
    uint64_t soff = j->pos - j->src_base;
    uint64_t want = s->size - soff < STATUS_MAX ? s->size - soff : STATUS_MAX;
    struct vdk_node *base = p->target_has_backing ? vdk_node_backing(s->node) : NULL;
    uint64_t pnum = 0, map = 0;
    struct vdk_node *file = NULL;
    int st = cvt_status(s->node, base, s->len, soff, want, &pnum, &map, &file);
    if (st < 0 && p->salvage) {
        /* As qemu-img: copy one sector as data, which reads as it can. */
        if ((st = cvt_salvage_failed(p->salvage, CVT_SALVAGE_STATUS, j->si, soff,
                                     CVT_SECTOR, st)) == 0) {
            st = VDK_BS_DATA;
            pnum = CVT_SECTOR;
            file = NULL;
        }
    }
    if (st < 0)
        return st;
    enum chunk_kind kind = (st & VDK_BS_ZERO)   ? CHUNK_ZERO
                           : (st & VDK_BS_DATA) ? CHUNK_DATA
                           : p->target_has_backing ? CHUNK_BACKING : CHUNK_DATA;
    uint64_t n = pnum;
    if (n % CVT_SECTOR) {
        /* Runs are kept in whole sectors: a zero run ending mid-sector
           stops before it; a data run covers the whole sector. */
        if (kind == CHUNK_DATA)
            n = cvt_round_len(n);
        else if (n >= CVT_SECTOR)
            n -= n % CVT_SECTOR;
        else {
            n = CVT_SECTOR;
            kind = CHUNK_DATA;
        }
        if (n > want)
            n = want;
    }
    /* End runs on the source's cluster boundaries, to read whole clusters. */
    if (s->align > CVT_SECTOR) {
        uint64_t tail = (soff + n) % s->align;
        if (n > tail)
            n -= tail;
    }
    j->run_start = j->pos;
    j->run_end = j->pos + n;
    j->run_kind = kind;
    const unsigned as_is = VDK_BS_DATA | VDK_BS_OFFSET_VALID | VDK_BS_PLAIN;
    j->run_node = kind == CHUNK_DATA && (st & as_is) == as_is ? file : NULL;
    j->run_map = map;
    return 0;
}

/* Hand out the next chunk.  Returns 1 when done (or another worker
   failed), 0 with *c, or -errno. */
static int plan_next(struct job *j, struct chunk *c)
{
    const struct cvt_params *p = j->p;
    c->pos = j->pos;
    if (j->error)
        return 1; /* another worker failed: stop */
    if (j->pos >= p->total)
        return 1;
    while (j->pos >= j->src_base + p->src[j->si].size) {
        j->src_base += p->src[j->si].size;
        j->si++;
    }
    if (j->pos >= j->run_end) {
        int r = plan_status(j);
        if (r < 0)
            return r;
    }
    c->kind = j->run_kind;
    c->pos = j->pos;
    c->n = j->run_end - j->pos;
    if (c->kind == CHUNK_DATA)
        c->n = c->n < j->data_max ? c->n : j->data_max;
    else if (c->kind == CHUNK_ZERO && !p->min_sparse)
        c->n = c->n < CVT_BUF_SIZE ? c->n : CVT_BUF_SIZE;
    if (p->compressed) {
        /* Compressed clusters are written whole: a short run is copied as
           data together with whatever follows it in the cluster. */
        if (c->n < p->cluster_size) {
            c->n = p->total - c->pos < p->cluster_size ? p->total - c->pos
                                                         : p->cluster_size;
            c->kind = CHUNK_DATA;
        } else {
            c->n -= c->n % p->cluster_size;
        }
    }
    c->si = j->si;
    /* A run never crosses sources, but a compressed cluster may. */
    bool in_run = c->kind == CHUNK_DATA && c->pos + c->n <= j->run_end;
    c->map_node = in_run ? j->run_node : NULL;
    c->map_off = j->run_map + (c->pos - j->run_start);
    c->seq = j->next_seq++;
    j->pos += c->n;
    return 0;
}

int cvt_read_stream(const struct cvt_params *p, uint64_t pos, uint64_t n, uint8_t *buf)
{
    uint64_t base = 0;
    size_t i = 0;
    while (n) {
        while (pos >= base + p->src[i].size)
            base += p->src[i++].size;
        const struct cvt_source *s = &p->src[i];
        uint64_t soff = pos - base;
        uint64_t c = s->size - soff < n ? s->size - soff : n;
        int r = cvt_read(s->node, s->len, buf, c, soff);
        if (r < 0)
            return r;
        buf += c;
        pos += c;
        n -= c;
    }
    return 0;
}

/* With --salvage a read that fails is read again sector by sector. */
static int read_chunk(struct job *j, uint64_t pos, uint64_t n, uint8_t *buf)
{
    int r = cvt_read_stream(j->p, pos, n, buf);
    if (r < 0 && j->p->salvage)
        r = cvt_salvage_read(j->p, pos, n, buf);
    return r;
}

/*
 * qemu-img's zero-run rule, in sectors.  Returns whether the first run of
 * buf (n sectors, starting at target sector `sector`) is data, and its
 * length in *pnum.  A run that ends off an `align` boundary is adjusted:
 * data grows to the boundary (the write would be read-modify-write
 * otherwise), zeros shrink to it, and zeros shorter than the distance are
 * folded into the data that follows.
 */
#define ZERO_STEP 64 /* sectors */

static inline bool sector_is_zero(const uint8_t *p)
{
    /* Most data sectors show it in their first word: no library call. */
    uint64_t w;
    memcpy(&w, p, sizeof(w));
    return !w && vdk_buffer_is_zero(p, CVT_SECTOR);
}

static bool sector_run(const uint8_t *buf, uint64_t n, uint64_t *pnum,
                       uint64_t sector, uint64_t align)
{
    bool zero = sector_is_zero(buf);
    uint64_t i = 1;
    /* A zero run is checked 32 KiB at a time first: one vectorised scan
       instead of 64 calls (zero scanning was a sixth of the CPU time of a
       convert from a fully allocated VHDX). */
    if (zero)
        while (i + ZERO_STEP <= n && vdk_buffer_is_zero(buf + i * CVT_SECTOR,
                                                        ZERO_STEP * CVT_SECTOR))
            i += ZERO_STEP;
    while (i < n && sector_is_zero(buf + i * CVT_SECTOR) == zero)
        i++;
    if (i < n) {
        uint64_t tail = (sector + i) & (align - 1);
        if (tail) {
            if (zero && i <= tail)
                zero = false;
            if (!zero)
                i = i + align - tail < n ? i + align - tail : n;
            else
                i -= tail;
        }
    }
    *pnum = i;
    return !zero;
}

/*
 * Like sector_run, but a data run swallows zero runs shorter than `min`
 * sectors, so small zero gaps do not split writes.
 */
static bool sector_run_min(const uint8_t *buf, uint64_t n, uint64_t *pnum,
                           uint64_t min, uint64_t sector, uint64_t align)
{
    if (min > n)
        min = n;
    if (!sector_run(buf, n, pnum, sector, align))
        return false;
    uint64_t used = *pnum, checked = used;
    buf += used * CVT_SECTOR;
    n -= used;
    sector += used;
    while (n) {
        uint64_t k;
        bool data = sector_run(buf, n, &k, sector, align);
        buf += k * CVT_SECTOR;
        n -= k;
        sector += k;
        checked += k;
        if (data)
            used = checked;
        else if (k >= min)
            break;
    }
    *pnum = used;
    return true;
}

/* Every write into the target pays the -r rate limit first, zeros
   included (qemu-img throttles the target's writes the same way). */
static int write_zeroes(struct job *j, uint64_t pos, uint64_t n)
{
    if (j->p->has_zero_init)
        return 0;
    vdk_ratelimit_wait(j->p->limit, n);
    return vdk_pwrite_zeroes(j->p->target, pos, n, VDK_REQ_MAY_UNMAP);
}

static int write_data(struct job *j, const void *buf, uint64_t n, uint64_t pos,
                      unsigned flags)
{
    vdk_ratelimit_wait(j->p->limit, n);
    return vdk_pwrite(j->p->target, buf, n, pos, flags);
}

static int write_compressed(struct job *j, const struct chunk *c, const uint8_t *buf)
{
    const struct cvt_params *p = j->p;
    /* Runs of data clusters go down in one write each: the driver then
       takes its locks and writes the file once per run, not per cluster. */
    uint64_t run = 0; /* start of the pending data run */
    for (uint64_t o = 0;; ) {
        uint64_t len = c->n - o < p->cluster_size ? c->n - o : p->cluster_size;
        bool zero = len && vdk_buffer_is_zero(buf + o, len);
        int r = 0;
        if ((zero || !len) && o > run)
            r = write_data(j, buf + run, o - run, c->pos + run, VDK_REQ_COMPRESSED);
        if (r == 0 && zero)
            r = write_zeroes(j, c->pos + o, len);
        if (r < 0)
            return r;
        if (!len)
            break;
        o += len;
        if (zero)
            run = o;
    }
    return 0;
}

/* A chunk's data split by qemu-img's zero-run rule: pieces of `sectors`
   sectors, each data or zeros.  Found before the chunk's turn to write,
   so that the scan runs in parallel in every worker. */
struct piece {
    uint64_t sectors;
    bool data;
};

#define CVT_MAX_PIECES (CVT_READ_MAX / CVT_SECTOR)

static bool needs_scan(const struct job *j, const struct chunk *c)
{
    return c->kind == CHUNK_DATA && j->p->min_sparse && !j->p->compressed;
}

/* Split the data chunk c (bytes in buf) into pieces; returns their count. */
static size_t scan_chunk(const struct job *j, const struct chunk *c, const uint8_t *buf,
                         struct piece *pieces)
{
    const struct cvt_params *p = j->p;
    uint64_t min = p->min_sparse / CVT_SECTOR;
    uint64_t align = 1;
    while (align * 2 <= min)
        align *= 2;
    if (align < p->target_align / CVT_SECTOR)
        align = p->target_align / CVT_SECTOR;
    uint64_t sector = c->pos / CVT_SECTOR, end = sector + c->n / CVT_SECTOR;
    size_t np = 0;
    /* Each CVT_BUF_SIZE step on its own, as when chunks were that large;
       neighbours of one kind then become one piece (one write). */
    while (sector < end) {
        uint64_t left = end - sector < CVT_BUF_SIZE / CVT_SECTOR ? end - sector
                                                                 : CVT_BUF_SIZE / CVT_SECTOR;
        while (left) {
            uint64_t k;
            bool data = sector_run_min(buf, left, &k, min, sector, align);
            if (np && pieces[np - 1].data == data)
                pieces[np - 1].sectors += k;
            else
                pieces[np++] = (struct piece){ k, data };
            buf += k * CVT_SECTOR;
            left -= k;
            sector += k;
        }
    }
    return np;
}

static int write_chunk(struct job *j, const struct chunk *c, const uint8_t *buf,
                       const struct piece *pieces, size_t np)
{
    const struct cvt_params *p = j->p;
    switch (c->kind) {
    case CHUNK_BACKING:
        return 0;
    case CHUNK_ZERO:
        if (!p->min_sparse && !p->compressed) /* -S 0: allocate everything */
            return write_data(j, j->zero_buf, c->n, c->pos, 0);
        return write_zeroes(j, c->pos, c->n);
    case CHUNK_DATA:
        break;
    }
    if (p->compressed)
        return write_compressed(j, c, buf);
    if (!p->min_sparse)
        return write_data(j, buf, c->n, c->pos, 0);
    uint64_t off = c->pos;
    for (size_t i = 0; i < np; i++) {
        uint64_t len = pieces[i].sectors * CVT_SECTOR;
        int r = pieces[i].data ? write_data(j, buf, len, off, 0)
                               : write_zeroes(j, off, len);
        if (r < 0)
            return r;
        buf += len;
        off += len;
    }
    return 0;
}

/*
 * Make the chunk's bytes ready to write: read them into buf unless they
 * are mapped already (*data), and split them into pieces (*np).
 */
static int prepare_chunk(struct job *j, const struct chunk *c, const uint8_t **data,
                         uint8_t *buf, struct piece *pieces, size_t *np)
{
    *np = 0;
    if (c->kind != CHUNK_DATA)
        return 0;
    if (!*data) {
        int r = read_chunk(j, c->pos, c->n, buf);
        if (r < 0)
            return r;
        *data = buf;
    }
    if (needs_scan(j, c))
        *np = scan_chunk(j, c, *data, pieces);
    return 0;
}

/*
 * A chunk written from a mapping that turned out damaged (the write
 * failed with EFAULT, or unmapping says pages vanished under it): read,
 * split and write it again the ordinary way.
 */
static int rewrite_read(struct job *j, const struct chunk *c, uint8_t *buf,
                        struct piece *pieces)
{
    const uint8_t *data = NULL;
    size_t np;
    int r = prepare_chunk(j, c, &data, buf, pieces, &np);
    return r < 0 ? r : write_chunk(j, c, buf, pieces, np);
}

static void *worker(void *opaque)
{
    struct job *j = opaque;
    uint8_t *buf = NULL;
    struct piece *pieces = malloc(CVT_MAX_PIECES * sizeof(*pieces));
    if (!pieces || posix_memalign((void **)&buf, 4096, j->data_max) != 0) {
        free(pieces);
        job_fail(j, -ENOMEM, "allocating a buffer", 0);
        return NULL;
    }
    for (;;) {
        struct chunk c = { 0 };
        pthread_mutex_lock(&j->lock);
        int r = plan_next(j, &c);
        pthread_mutex_unlock(&j->lock);
        if (r == 1)
            break;
        if (r < 0) {
            job_fail(j, r, "reading block status", c.pos);
            break;
        }
        const void *ptr = NULL;
        if (c.map_node && vdk_node_map(c.map_node, c.map_off, c.n, &ptr) < 0)
            ptr = NULL;
        const uint8_t *data = ptr;
        size_t np;
        if ((r = prepare_chunk(j, &c, &data, buf, pieces, &np)) < 0) {
            if (ptr)
                vdk_node_unmap(c.map_node, ptr, c.n);
            job_fail(j, r, "reading", c.pos);
            break;
        }
        /* With -c nothing waits for its turn (the turn counter only works
           when every chunk waits): the driver compresses inside
           vdk_pwrite(), so waiting would serialise the compression.
           Clusters are then stored in completion order; -m 1 keeps them
           sequential. */
        if (!j->p->out_of_order && !j->p->compressed) {
            pthread_mutex_lock(&j->lock);
            while (j->next_write != c.seq && !j->error)
                pthread_cond_wait(&j->turn[c.seq % j->nturn], &j->lock);
            r = j->error;
            pthread_mutex_unlock(&j->lock);
            if (r) {
                if (ptr)
                    vdk_node_unmap(c.map_node, ptr, c.n);
                break;
            }
        }
        r = write_chunk(j, &c, data, pieces, np);
        if (ptr && (vdk_node_unmap(c.map_node, ptr, c.n) == -EFAULT || r == -EFAULT))
            r = rewrite_read(j, &c, buf, pieces);
        if (r < 0) {
            job_fail(j, r, "writing", c.pos);
            break;
        }
        pthread_mutex_lock(&j->lock);
        j->next_write++;
        j->done += c.n;
        progress_update(j->p->progress, j->done, j->p->total);
        pthread_cond_signal(&j->turn[j->next_write % j->nturn]);
        pthread_mutex_unlock(&j->lock);
    }
    free(buf);
    free(pieces);
    return NULL;
}

int cvt_run(const struct cvt_params *p)
{
    struct job j = { .p = p, .data_max = read_size(p) };
    int nw = p->workers < 1 ? 1 : p->workers;
    uint8_t *zero = NULL;
    if (!p->min_sparse) {
        if (!(zero = calloc(1, CVT_BUF_SIZE)))
            return img_error("out of memory");
        j.zero_buf = zero;
    }
    pthread_t *tids = calloc((size_t)nw, sizeof(*tids));
    j.turn = calloc((size_t)nw, sizeof(*j.turn));
    if (!tids || !j.turn) {
        free(tids);
        free(j.turn);
        free(zero);
        return img_error("out of memory");
    }
    pthread_mutex_init(&j.lock, NULL);
    j.nturn = (unsigned)nw;
    for (int i = 0; i < nw; i++)
        pthread_cond_init(&j.turn[i], NULL);
    progress_update(p->progress, 0, p->total);
    /* The calling thread is worker 0. */
    int started = 1;
    for (int i = 1; i < nw; i++) {
        if (pthread_create(&tids[i], NULL, worker, &j) != 0)
            break; /* fewer workers is still correct */
        started++;
    }
    worker(&j);
    for (int i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    free(zero);
    for (int i = 0; i < nw; i++)
        pthread_cond_destroy(&j.turn[i]);
    free(j.turn);
    pthread_mutex_destroy(&j.lock);
    if (j.error)
        return 1;
    progress_finish(p->progress);
    return 0;
}
