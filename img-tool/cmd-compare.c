/* SPDX-License-Identifier: MIT */
/*
 * vdk-img compare: qemu-img compare's command line, messages and exit
 * codes: 0 identical, 1 different, 2 error opening an image, 3 error
 * getting block status, 4 error reading.  Ranges block status reports as
 * zero are not read; a range that is zero on one side only is checked for
 * zeros on the other.  Images of different sizes compare the longer one's
 * tail against zeros unless -s (strict).  Mismatch offsets are reported at
 * 512-byte sector granularity, as qemu-img does.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"


struct image {
    const char *name;
    struct vdk_node *node;
    uint64_t len, size;
};

struct cmp {
    struct image img[2];
    bool quiet, strict;
    uint8_t *buf[2];
    struct progress *prog;
    uint64_t done, total;
};

const char img_compare_options[] =
    "  -f fmt                 format of the first image (probed when absent)\n"
    "  -F fmt                 format of the second image (probed when absent)\n"
    "  -T src_cache           cache mode for reading both images\n"
    "  -s                     strict: a size difference or an allocated range\n"
    "                         against an unallocated one is a difference\n"
    "  -p                     show progress\n"
    "  -q                     quiet\n"
    "  -U, --force-share      open without taking image locks\n"
    "  --image-opts           the file names are option strings\n"
    "  --object objectdef     define an object (a secret)\n"
    "Exit status: 0 identical, 1 different, 2 open error, 3 block status\n"
    "error, 4 read error.\n";

/* A result line on stdout, unless -q. */
static void say(struct cmp *c, const char *fmt, ...) VDK_PRINTF(2, 3);
static void say(struct cmp *c, const char *fmt, ...)
{
    if (c->quiet)
        return;
    progress_message(c->prog);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

/* Offset of the first sector in buf (bytes long) that is not zero, or -1. */
static int64_t first_nonzero_sector(const uint8_t *buf, uint64_t bytes)
{
    for (uint64_t i = 0; i < bytes; i += CVT_SECTOR) {
        uint64_t n = bytes - i < CVT_SECTOR ? bytes - i : CVT_SECTOR;
        if (!vdk_buffer_is_zero(buf + i, n))
            return (int64_t)i;
    }
    return -1;
}

static int64_t first_diff_sector(const uint8_t *a, const uint8_t *b, uint64_t bytes)
{
    if (memcmp(a, b, bytes) == 0)
        return -1;
    for (uint64_t i = 0; i < bytes; i += CVT_SECTOR) {
        uint64_t n = bytes - i < CVT_SECTOR ? bytes - i : CVT_SECTOR;
        if (memcmp(a + i, b + i, n))
            return (int64_t)i;
    }
    return -1;
}

static int read_img(struct cmp *c, int k, uint64_t off, uint64_t n)
{
    struct image *im = &c->img[k];
    int r = cvt_read(im->node, im->len, c->buf[k], n, off);
    if (r < 0) {
        progress_abort(c->prog);
        img_error("Error while reading offset %" PRIu64 " of %s: %s", off, im->name,
                  strerror(-r));
        return 4;
    }
    return 0;
}

/*
 * Compare [off, off+bytes): both sides read (both = true) or only image k
 * checked for zeros.  Returns -1 equal, 1 mismatch, or an exit code.
 */
static int compare_range(struct cmp *c, uint64_t off, uint64_t bytes, bool both, int k)
{
    while (bytes) {
        uint64_t n = bytes < CVT_BUF_SIZE ? bytes : CVT_BUF_SIZE;
        int r = read_img(c, both ? 0 : k, off, n);
        if (r == 0 && both)
            r = read_img(c, 1, off, n);
        if (r)
            return r;
        int64_t at = both ? first_diff_sector(c->buf[0], c->buf[1], n)
                          : first_nonzero_sector(c->buf[k], n);
        if (at >= 0) {
            say(c, "Content mismatch at offset %" PRIu64 "!\n", off + (uint64_t)at);
            return 1;
        }
        off += n;
        bytes -= n;
        c->done += n;
        progress_update(c->prog, c->done, c->total);
    }
    return -1;
}

static int status_of(struct cmp *c, int k, uint64_t off, uint64_t bytes, uint64_t *pnum)
{
    struct image *im = &c->img[k];
    int st = cvt_status(im->node, NULL, im->len, off, bytes, pnum, NULL, NULL);
    if (st < 0) {
        progress_abort(c->prog);
        img_error("Sector allocation test failed for %s", im->name);
    }
    return st;
}

/* Whole sectors, except for a last piece shorter than one. */
static uint64_t sector_chunk(uint64_t n)
{
    return n >= CVT_SECTOR ? n - n % CVT_SECTOR : n;
}

static int compare_images(struct cmp *c)
{
    uint64_t common = c->img[0].size < c->img[1].size ? c->img[0].size : c->img[1].size;
    c->total = c->img[0].size > c->img[1].size ? c->img[0].size : c->img[1].size;
    progress_update(c->prog, 0, c->total);
    for (uint64_t off = 0; off < common;) {
        uint64_t p0, p1;
        int s0 = status_of(c, 0, off, common - off, &p0);
        if (s0 < 0)
            return 3;
        int s1 = status_of(c, 1, off, common - off, &p1);
        if (s1 < 0)
            return 3;
        uint64_t chunk = sector_chunk(p0 < p1 ? p0 : p1);
        if (c->strict && s0 != s1) {
            say(c, "Strict mode: Offset %" PRIu64 " block status mismatch!\n", off);
            return 1;
        }
        bool z0 = s0 & VDK_BS_ZERO, z1 = s1 & VDK_BS_ZERO;
        if (z0 && z1) {
            c->done += chunk;
            progress_update(c->prog, c->done, c->total);
        } else {
            int r = compare_range(c, off, chunk, !z0 && !z1, z0 ? 1 : 0);
            if (r >= 0)
                return r;
        }
        off += chunk;
    }
    /* The longer image's tail must read as zeros.  Like qemu-img, warn
       about the sizes only once the common part matched. */
    if (c->img[0].size != c->img[1].size)
        say(c, "Warning: Image size mismatch!\n");
    int k = c->img[0].size > common ? 0 : 1;
    for (uint64_t off = common; off < c->img[k].size;) {
        uint64_t pnum;
        int s = status_of(c, k, off, c->img[k].size - off, &pnum);
        if (s < 0)
            return 3;
        uint64_t chunk = sector_chunk(pnum);
        if (s & VDK_BS_ZERO) {
            c->done += chunk;
            progress_update(c->prog, c->done, c->total);
        } else {
            int r = compare_range(c, off, chunk, false, k);
            if (r >= 0)
                return r;
        }
        off += chunk;
    }
    progress_update(c->prog, c->total, c->total);
    say(c, "Images are identical.\n");
    return 0;
}

static int open_img(struct image *im, const char *fmt, bool image_opts, unsigned flags)
{
    struct vdk_error *err = NULL;
    if (img_open(&im->node, im->name, fmt, image_opts, NULL, flags, &err) < 0) {
        img_report(err, "Could not open '%s'", im->name);
        return 2;
    }
    int64_t len = vdk_get_length(im->node);
    if (len < 0) {
        img_error("Could not get size of %s: %s", im->name, strerror((int)-len));
        return 2;
    }
    im->len = (uint64_t)len;
    im->size = cvt_round_len(im->len);
    return 0;
}

int img_cmd_compare(int argc, char **argv)
{
    struct img_image_args ia = { 0 };
    const char *fmt[2] = { NULL, NULL };
    bool progress = false;
    struct cmp c = { .quiet = false };
    int ch, ret;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":hf:F:T:pqsU", img_image_long_opts, NULL)) != -1) {
        switch (ch) {
        case 'h': return img_command_help("compare");
        case 'F': fmt[1] = optarg; break;
        case 'p': progress = true; break;
        case 'q': c.quiet = true; break;
        case 's': c.strict = true; break;
        case '?':
        case ':':
            return img_getopt_error(ch, argv);
        default: /* -f, -T, -U, --image-opts, --object: a bad value exits 2 */
            if (img_image_opt(&ia, ch, optarg, argv))
                return 2;
        }
    }
    fmt[0] = ia.fmt;
    bool image_opts = ia.image_opts;
    unsigned flags = ia.flags;
    if (argc - optind != 2)
        return img_usage_error("Expecting two image file names");
    c.img[0].name = argv[optind];
    c.img[1].name = argv[optind + 1];
    for (int k = 0; k < 2; k++)
        if ((ret = open_img(&c.img[k], fmt[k], image_opts, flags)) != 0)
            goto out;
    if (posix_memalign((void **)&c.buf[0], 4096, CVT_BUF_SIZE) != 0 ||
        posix_memalign((void **)&c.buf[1], 4096, CVT_BUF_SIZE) != 0) {
        img_error("out of memory");
        ret = 2;
        goto out;
    }
    c.prog = progress_new(progress && !c.quiet, stdout);
    if (c.img[0].size != c.img[1].size && c.strict) {
        say(&c, "Strict mode: Image size mismatch!\n");
        ret = 1;
        goto out;
    }
    ret = compare_images(&c);
out:
    for (int k = 0; k < 2; k++) {
        if (c.img[k].node)
            vdk_close(c.img[k].node);
        free(c.buf[k]);
    }
    progress_end(c.prog);
    progress_free(c.prog);
    return ret;
}
