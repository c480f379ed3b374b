/* SPDX-License-Identifier: MIT */
/*
 * vdk-img bench, qemu-img bench's command line and output:
 *   bench [-c count] [-d depth] [-f fmt] [--flush-interval=flush_interval]
 *         [-i aio] [-n] [--no-drain] [-o offset] [--pattern=pattern] [-q]
 *         [-s buffer_size] [-S step_size] [-t cache] [-w] [-U] filename
 *
 * `count` requests of buffer_size bytes go to offsets offset,
 * offset + step, ... (wrapping at the image's end less one buffer, as
 * qemu-img does), `depth` at a time.  qemu-img keeps them in flight as
 * coroutines on one AIO context; vdk-img has `depth` threads doing
 * blocking I/O (at most BENCH_MAX_THREADS).  Writes store the --pattern
 * byte.  With --flush-interval N a flush follows every N requests, after
 * the requests in flight completed unless --no-drain.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"

#define BENCH_MAX_THREADS 256

enum {
    OPT_PATTERN = IMG_OPT_FORCE + 1,
    OPT_FLUSH_INTERVAL,
    OPT_NO_DRAIN,
};

const char img_bench_options[] =
    "  -c count               number of requests (default 75000)\n"
    "  -d depth               requests in flight at once (default 64; vdk-img\n"
    "                         runs at most 256 threads)\n"
    "  -f fmt                 image format (probed when absent)\n"
    "  -w                     write instead of read\n"
    "  --pattern=pattern      byte the writes store (default 0)\n"
    "  -s buffer_size         bytes per request (default 4k)\n"
    "  -S step_size           distance between request offsets (default:\n"
    "                         buffer_size)\n"
    "  -o offset              offset of the first request\n"
    "  --flush-interval=N     flush after every N write requests\n"
    "  --no-drain             do not wait for the requests in flight before a\n"
    "                         flush\n"
    "  -t cache               cache mode (default writeback)\n"
    "  -i aio, -n             AIO mode (threads, native, io_uring) and -n for\n"
    "                         native: accepted; vdk-img does blocking I/O in\n"
    "                         threads\n"
    "  -q                     accepted (qemu-img 7.2 prints its lines anyway)\n"
    "  -U, --force-share      open without taking image locks (reads only)\n"
    "  --image-opts           the file name is an option string\n";

struct bench_args {
    struct img_image_args img;
    uint64_t count, depth, bufsize, offset, step, pattern, flush_interval;
    bool write, drain, native;
};

struct bench {
    const struct bench_args *a;
    struct vdk_node *node;
    uint64_t size;           /* image length */
    pthread_mutex_t lock;
    pthread_cond_t idle;     /* in_flight dropped to 0, or a flush ended */
    uint64_t issued, next_off;
    unsigned in_flight;
    bool flushing;
    int error;               /* first failure, -errno */
};

/* qemu_strtoul with base 0 (0x.., 0..): whole string, at most max. */
static int parse_ulong(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Take the next request's offset (and run a due flush first).  Returns 1
   when the run is over, 0 with *off, or -errno. */
static int next_request(struct bench *b, uint64_t *off)
{
    const struct bench_args *a = b->a;
    int r = 0;
    pthread_mutex_lock(&b->lock);
    while (b->flushing && !b->error)
        pthread_cond_wait(&b->idle, &b->lock);
    if (b->error || b->issued >= a->count) {
        pthread_mutex_unlock(&b->lock);
        return 1;
    }
    if (a->flush_interval && b->issued && b->issued % a->flush_interval == 0) {
        /* This thread flushes; the others wait for it to end. */
        b->flushing = true;
        while (a->drain && b->in_flight && !b->error)
            pthread_cond_wait(&b->idle, &b->lock);
        pthread_mutex_unlock(&b->lock);
        r = vdk_flush(b->node);
        pthread_mutex_lock(&b->lock);
        b->flushing = false;
        if (r < 0 && !b->error)
            b->error = r;
        pthread_cond_broadcast(&b->idle);
        if (b->error) {
            pthread_mutex_unlock(&b->lock);
            return 1;
        }
    }
    *off = b->next_off;
    /* The next offset wraps as qemu-img's does; the first is as given. */
    b->next_off += a->step;
    b->next_off = b->size <= a->bufsize ? 0 : b->next_off % (b->size - a->bufsize);
    b->issued++;
    b->in_flight++;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

static void request_done(struct bench *b, int r)
{
    pthread_mutex_lock(&b->lock);
    if (r < 0 && !b->error)
        b->error = r;
    if (--b->in_flight == 0 || b->error)
        pthread_cond_broadcast(&b->idle);
    pthread_mutex_unlock(&b->lock);
}

static void *bench_worker(void *opaque)
{
    struct bench *b = opaque;
    const struct bench_args *a = b->a;
    uint8_t *buf = vdk_buffer_alloc(a->bufsize ? a->bufsize : 1);
    if (!buf) {
        pthread_mutex_lock(&b->lock);
        if (!b->error)
            b->error = -ENOMEM;
        pthread_cond_broadcast(&b->idle);
        pthread_mutex_unlock(&b->lock);
        return NULL;
    }
    memset(buf, (int)a->pattern, a->bufsize);
    uint64_t off;
    while (next_request(b, &off) == 0) {
        int r;
        if (off > b->size || a->bufsize > b->size - off)
            r = -EIO; /* beyond the end: qemu-img's block layer says EIO */
        else if (a->write)
            r = vdk_pwrite(b->node, buf, a->bufsize, off, 0);
        else
            r = vdk_pread(b->node, buf, a->bufsize, off, 0);
        request_done(b, r);
    }
    vdk_buffer_free(buf);
    return NULL;
}

/* Run the requests; 0 or -errno of the first failure. */
static int bench_run(struct bench *b)
{
    uint64_t n = b->a->depth < b->a->count ? b->a->depth : b->a->count;
    if (n > BENCH_MAX_THREADS)
        n = BENCH_MAX_THREADS;
    if (n == 0)
        return 0;
    pthread_t *tids = calloc(n, sizeof(*tids));
    if (!tids)
        return -ENOMEM;
    uint64_t started = 1; /* the calling thread is worker 0 */
    for (uint64_t i = 1; i < n; i++) {
        if (pthread_create(&tids[i], NULL, bench_worker, b) != 0)
            break; /* fewer threads still run every request */
        started++;
    }
    bench_worker(b);
    for (uint64_t i = 1; i < started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    return b->error;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct bench_args *a)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "flush-interval", required_argument, NULL, OPT_FLUSH_INTERVAL },
        { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
        { NULL, 0, NULL, 0 },
    };
    unsigned cache = 0;
    int c;
    img_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("bench");
        case 'c':
            if (parse_ulong(optarg, INT_MAX, &a->count) < 0)
                return img_error("Invalid request count specified");
            break;
        case 'd':
            /* qemu-img takes 0 and then never ends; refused here. */
            if (parse_ulong(optarg, INT_MAX, &a->depth) < 0 || !a->depth)
                return img_error("Invalid queue depth specified");
            break;
        case 'n': a->native = true; break;
        case 'i':
            if (strcmp(optarg, "native") == 0)
                a->native = true;
            else if (strcmp(optarg, "threads") == 0 || strcmp(optarg, "io_uring") == 0)
                a->native = false;
            else
                return img_error("Invalid aio option: %s", optarg);
            break;
        case 'o':
            if (img_parse_num_arg("offset", optarg, &a->offset))
                return 1;
            break;
        case 'q': break; /* qemu-img 7.2 prints its two lines anyway */
        case 's':
        case 'S': {
            const char *what = c == 's' ? "buffer size" : "step_size";
            uint64_t v;
            if (img_parse_num_arg(what, optarg, &v))
                return 1;
            if (v > INT_MAX)
                return img_error("Invalid %s specified. Must be between 0 and %d.", what,
                                 INT_MAX);
            *(c == 's' ? &a->bufsize : &a->step) = v;
            break;
        }
        case 't':
            if (img_parse_cache(optarg, &cache) < 0)
                return img_error("Invalid cache mode");
            a->img.flags = (a->img.flags & ~(VDK_O_DIRECT | VDK_O_UNSAFE)) | cache;
            break;
        case 'w': a->write = true; break;
        case OPT_PATTERN:
            if (parse_ulong(optarg, 0xff, &a->pattern) < 0)
                return img_error("Invalid pattern byte specified");
            break;
        case OPT_FLUSH_INTERVAL:
            if (parse_ulong(optarg, INT_MAX, &a->flush_interval) < 0)
                return img_error("Invalid flush interval specified");
            break;
        case OPT_NO_DRAIN: a->drain = false; break;
        default: /* -f, -U, --image-opts, or an error */
            if (img_image_opt(&a->img, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (!a->write && a->flush_interval)
        return img_error("--flush-interval is only available in write tests");
    if (a->flush_interval && a->flush_interval < a->depth)
        return img_error("Flush interval can't be smaller than depth");
    return -1;
}

int img_cmd_bench(int argc, char **argv)
{
    struct bench_args a = { .count = 75000, .depth = 64, .bufsize = 4096, .drain = true };
    int ret = parse_args(argc, argv, &a);
    if (ret >= 0)
        return ret;
    const char *filename = argv[optind];
    if (a.native && !(a.img.flags & VDK_O_DIRECT))
        return img_error("Could not open '%s': aio=native was specified, but it requires "
                         "cache.direct=on, which was not specified.", filename);
    if (a.write && (a.img.flags & VDK_O_SHARE))
        return img_error("Could not open '%s': force-share=on can only be used with "
                         "read-only images", filename);
    if (a.write)
        a.img.flags |= VDK_O_RDWR;
    struct bench b = { .a = &a };
    if (img_open_or_report(&b.node, filename, a.img.fmt, a.img.image_opts, NULL, a.img.flags))
        return 1;
    int64_t len = vdk_get_length(b.node);
    if (len < 0) {
        vdk_close(b.node);
        return img_error("Could not get size of '%s': %s", filename, strerror((int)-len));
    }
    b.size = (uint64_t)len;
    b.next_off = a.offset;
    if (!a.step)
        a.step = a.bufsize;
    printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu64 " in parallel "
           "(starting at offset %" PRIu64 ", step size %" PRIu64 ")\n", a.count,
           a.write ? "write" : "read", a.bufsize, a.depth, a.offset, a.step);
    if (a.flush_interval)
        printf("Sending flush every %" PRIu64 " requests\n", a.flush_interval);
    fflush(stdout);
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.idle, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int r = bench_run(&b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_cond_destroy(&b.idle);
    pthread_mutex_destroy(&b.lock);
    int cr = vdk_close(b.node);
    if (r < 0)
        return img_error("Failed request: %s", strerror(-r));
    if (cr < 0)
        return img_error("Failed flush request: %s", strerror(-cr));
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("Run completed in %3.3f seconds.\n", secs);
    return 0;
}
