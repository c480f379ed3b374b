/* SPDX-License-Identifier: MIT */
/* The "memory" protocol: see memory.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/driver.h"
#include "protocols/memory.h"

/* Bound for tests and fuzzers feeding sizes from outside. */
#define MEMORY_MAX_SIZE (4ull << 30)

struct memory_state {
    pthread_rwlock_t lock;     /* write-held only to grow the buffer */
    pthread_mutex_t stats_lock;
    uint8_t *data;
    uint64_t len;
    uint64_t max_size;         /* growth past it fails with EFBIG */
    bool zero_support;
    bool fua;
    uint64_t latency_us;
    struct vdk_memory_stats stats;
};

/* Initial contents by name (vdk_memory_preset). */
struct memory_preset {
    char *name;
    uint8_t *data;
    size_t len;
    struct memory_preset *next;
};

static pthread_mutex_t preset_lock = PTHREAD_MUTEX_INITIALIZER;
static struct memory_preset *presets;

int vdk_memory_preset(const char *name, const void *data, size_t len)
{
    if (!name)
        return -EINVAL;
    if (data && len > MEMORY_MAX_SIZE)
        return -EFBIG;
    struct memory_preset *np = NULL;
    if (data) {
        np = calloc(1, sizeof(*np));
        if (!np || !(np->name = strdup(name)) || !(np->data = malloc(len ? len : 1))) {
            if (np)
                free(np->name);
            free(np);
            return -ENOMEM;
        }
        memcpy(np->data, data, len);
        np->len = len;
    }
    pthread_mutex_lock(&preset_lock);
    for (struct memory_preset **pp = &presets; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, name) == 0) {
            struct memory_preset *old = *pp;
            *pp = old->next;
            free(old->name);
            free(old->data);
            free(old);
            break;
        }
    }
    if (np) {
        np->next = presets;
        presets = np;
    }
    pthread_mutex_unlock(&preset_lock);
    return 0;
}

/*
 * Allocate the buffer for a new node: at least `size` bytes, starting with
 * the preset of `filename` ("memory://NAME") if there is one.
 */
static int memory_alloc(const char *filename, uint64_t size, uint8_t **data,
                        uint64_t *len)
{
    const char *name = filename && strncmp(filename, "memory://", 9) == 0
                       ? filename + 9 : filename;
    int r = 0;
    pthread_mutex_lock(&preset_lock);
    struct memory_preset *p = NULL;
    if (name)
        for (p = presets; p && strcmp(p->name, name) != 0; p = p->next)
            ;
    uint64_t plen = p ? p->len : 0;
    *len = size > plen ? size : plen;
    *data = calloc(1, *len ? *len : 1);
    if (!*data)
        r = -ENOMEM;
    else if (plen)
        memcpy(*data, p->data, plen);
    pthread_mutex_unlock(&preset_lock);
    return r;
}

static const struct vdk_opt_desc memory_open_opts[] = {
    { "filename", VDK_OPT_STRING, "memory://NAME (contents from vdk_memory_preset)",
      NULL, NULL },
    { "size", VDK_OPT_SIZE, "Initial size", "0", NULL },
    { "align", VDK_OPT_SIZE, "Request alignment to announce", "1", NULL },
    { "max-transfer", VDK_OPT_SIZE, "Largest request to announce", NULL, NULL },
    { "zeroes", VDK_OPT_BOOL, "Support write-zeroes natively", "on", NULL },
    { "fua", VDK_OPT_BOOL, "Announce native FUA writes", "off", NULL },
    { "max-size", VDK_OPT_SIZE,
      "Largest size the image may grow to (writes past it fail with EFBIG, as with a "
      "file-size limit)", "4G", NULL },
    { "latency", VDK_OPT_NUMBER,
      "Microseconds each read and write takes (widens race windows in tests)", "0", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int memory_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                       struct vdk_error **errp)
{
    struct memory_state *s = n->opaque;
    uint64_t size, align, mt;
    int r;
    const char *fn = vdk_opts_get(opts, "filename");
    if ((r = vdk_opts_get_size(opts, "size", 0, &size, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "align", 1, &align, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "max-transfer", 0, &mt, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "max-size", MEMORY_MAX_SIZE, &s->max_size, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "zeroes", true, &s->zero_support, errp)) < 0 ||
        (r = vdk_opts_get_bool(opts, "fua", false, &s->fua, errp)) < 0 ||
        (r = vdk_opts_get_uint(opts, "latency", 0, &s->latency_us, errp)) < 0)
        return r;
    if (s->max_size > MEMORY_MAX_SIZE)
        return vdk_error_setf(errp, EINVAL, "max-size is at most 4 GiB");
    if (size > s->max_size)
        return vdk_error_setf(errp, EFBIG, "memory image larger than max-size (%" PRIu64
                              " bytes)", s->max_size);
    if (s->latency_us > 1000000)
        return vdk_error_setf(errp, EINVAL, "latency is at most 1000000 microseconds");
    if (!vdk_is_pow2(align) || align > (1u << 20))
        return vdk_error_setf(errp, EINVAL, "align must be a power of two up to 1 MiB");
    if (mt && (mt % align || mt > VDK_MAX_REQUEST))
        return vdk_error_setf(errp, EINVAL, "max-transfer must be a multiple of align");
    if (memory_alloc(fn, size, &s->data, &s->len) < 0)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    pthread_rwlock_init(&s->lock, NULL);
    pthread_mutex_init(&s->stats_lock, NULL);
    n->size = s->len;
    n->growable = true;
    n->limits.request_alignment = (uint32_t)align;
    n->limits.max_transfer = (uint32_t)mt;
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    if (s->fua) {
        n->supported_write_flags |= VDK_REQ_FUA;
        n->supported_zero_flags |= VDK_REQ_FUA;
    }
    return 0;
}

static void memory_close(struct vdk_node *n)
{
    struct memory_state *s = n->opaque;
    pthread_rwlock_destroy(&s->lock);
    pthread_mutex_destroy(&s->stats_lock);
    free(s->data);
}

static void count(struct vdk_node *n, uint64_t *ctr, uint64_t offset, uint64_t bytes,
                  unsigned flags)
{
    struct memory_state *s = n->opaque;
    uint32_t a = n->limits.request_alignment;
    pthread_mutex_lock(&s->stats_lock);
    (*ctr)++;
    if (flags & VDK_REQ_FUA)
        s->stats.fua++;
    if (bytes > s->stats.max_request)
        s->stats.max_request = bytes;
    if ((offset | bytes) & (a - 1))
        s->stats.unaligned++;
    pthread_mutex_unlock(&s->stats_lock);
}

/* Make sure the buffer covers [0, end); returns with the read lock held. */
static int memory_reserve(struct memory_state *s, uint64_t end)
{
    pthread_rwlock_rdlock(&s->lock);
    if (end <= s->len)
        return 0;
    pthread_rwlock_unlock(&s->lock);
    if (end > s->max_size)
        return -EFBIG;
    pthread_rwlock_wrlock(&s->lock);
    if (end > s->len) {
        uint8_t *nd = realloc(s->data, end);
        if (!nd) {
            pthread_rwlock_unlock(&s->lock);
            return -ENOMEM;
        }
        memset(nd + s->len, 0, end - s->len);
        s->data = nd;
        s->len = end;
    }
    pthread_rwlock_unlock(&s->lock);
    pthread_rwlock_rdlock(&s->lock);
    return 0;
}

static int memory_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                        void *buf, unsigned flags)
{
    struct memory_state *s = n->opaque;
    count(n, &s->stats.reads, offset, bytes, 0);
    if (s->latency_us)
        usleep((useconds_t)s->latency_us);
    pthread_rwlock_rdlock(&s->lock);
    uint64_t avail = offset < s->len ? vdk_min_u64(bytes, s->len - offset) : 0;
    if (avail)
        memcpy(buf, s->data + offset, avail);
    memset((uint8_t *)buf + avail, 0, bytes - avail);
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

static int memory_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                         const void *buf, unsigned flags)
{
    struct memory_state *s = n->opaque;
    count(n, &s->stats.writes, offset, bytes, flags);
    if (s->latency_us)
        usleep((useconds_t)s->latency_us);
    int r = memory_reserve(s, offset + bytes);
    if (r < 0)
        return r;
    memcpy(s->data + offset, buf, bytes);
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

static int memory_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                                unsigned flags)
{
    struct memory_state *s = n->opaque;
    if (!s->zero_support)
        return -ENOTSUP;
    count(n, &s->stats.zero_writes, offset, bytes, flags);
    int r = memory_reserve(s, offset + bytes);
    if (r < 0)
        return r;
    memset(s->data + offset, 0, bytes);
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

static int memory_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct memory_state *s = n->opaque;
    count(n, &s->stats.discards, offset, bytes, 0);
    pthread_rwlock_rdlock(&s->lock);
    if (offset < s->len)
        memset(s->data + offset, 0, vdk_min_u64(bytes, s->len - offset));
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

static int memory_flush(struct vdk_node *n)
{
    struct memory_state *s = n->opaque;
    pthread_mutex_lock(&s->stats_lock);
    s->stats.flushes++;
    pthread_mutex_unlock(&s->stats_lock);
    return 0;
}

static int64_t memory_get_length(struct vdk_node *n)
{
    struct memory_state *s = n->opaque;
    pthread_rwlock_rdlock(&s->lock);
    int64_t l = (int64_t)s->len;
    pthread_rwlock_unlock(&s->lock);
    return l;
}

static int memory_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                           bool allow_shrink, struct vdk_error **errp)
{
    struct memory_state *s = n->opaque;
    if (size > s->max_size)
        return vdk_error_setf(errp, EFBIG, "memory image larger than max-size (%" PRIu64
                              " bytes)", s->max_size);
    pthread_rwlock_wrlock(&s->lock);
    uint8_t *nd = realloc(s->data, size ? size : 1);
    if (!nd) {
        pthread_rwlock_unlock(&s->lock);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    if (size > s->len)
        memset(nd + s->len, 0, size - s->len);
    s->data = nd;
    s->len = size;
    n->size = size;
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

const struct vdk_memory_stats *vdk_memory_stats(struct vdk_node *n)
{
    if (!n || n->drv != &vdk_driver_memory)
        return NULL;
    return &((struct memory_state *)n->opaque)->stats;
}

uint8_t *vdk_memory_data(struct vdk_node *n, uint64_t *len)
{
    if (!n || n->drv != &vdk_driver_memory)
        return NULL;
    struct memory_state *s = n->opaque;
    *len = s->len;
    return s->data;
}

const struct vdk_driver vdk_driver_memory = {
    .name = "memory",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct memory_state),
    .protocols = (const char *const[]){ "memory", NULL },
    .open_opts = memory_open_opts,
    .open = memory_open,
    .close = memory_close,
    .pread = memory_pread,
    .pwrite = memory_pwrite,
    .pwrite_zeroes = memory_pwrite_zeroes,
    .discard = memory_discard,
    .flush = memory_flush,
    .get_length = memory_get_length,
    .truncate = memory_truncate,
};
