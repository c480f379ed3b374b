/* SPDX-License-Identifier: MIT */
/*
 * vdk-img dd: qemu-img dd's operands (bs=, count=, skip=, if=, of=) and
 * its arithmetic, so the output is byte-identical to qemu-img's:
 *  - the input length is rounded up to whole sectors;
 *  - count limits the input to count*bs bytes from its start, before skip
 *    is applied (qemu-img's behaviour, kept for identical output);
 *  - a skip beyond the input prints "cannot skip to specified offset" and
 *    produces an empty output, with exit status 0, as qemu-img does;
 *  - the output is created with the remaining size rounded up to sectors
 *    and written block by block (no sparse detection).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"


/* Copy at most this much per read/write; a bigger bs is copied in pieces. */
#define DD_PIECE (4u << 20)

struct dd_args {
    uint64_t bs, count, skip;
    bool has_count, has_skip;
    const char *in, *out;
};

const char img_dd_options[] =
    "  -f fmt                 format of the input (probed when absent)\n"
    "  -O output_fmt          format of the output (default raw)\n"
    "  bs=block_size          bytes per block (default 512)\n"
    "  count=blocks           copy only this many blocks\n"
    "  skip=blocks            skip this many blocks of the input\n"
    "  if=input of=output     the input image and the output, which is created\n"
    "  -U, --force-share      open the input without taking image locks\n"
    "  --image-opts           the input is an option string\n"
    "  --object objectdef     define an object (a secret)\n";

static int bad_number(const char *what)
{
    return img_error("Invalid %s specified. You may use k, M, G, T, P or E suffixes for "
                     "kilobytes, megabytes, gigabytes, terabytes, petabytes and exabytes.",
                     what);
}

/* Parse "key=value" operands.  Returns -1 to go on, else the exit code. */
static int parse_operands(int argc, char **argv, struct dd_args *a)
{
    for (int i = optind; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *val = eq ? eq + 1 : NULL;
#define KEY_IS(k) (klen == strlen(k) && strncmp(arg, k, klen) == 0 && val)
        if (KEY_IS("bs")) {
            if (vdk_parse_size(val, &a->bs) < 0)
                return bad_number("bs");
            if (a->bs < 1 || a->bs > INT_MAX)
                return img_error("Invalid bs specified. Must be between 1 and %d.",
                                 INT_MAX);
        } else if (KEY_IS("count")) {
            if (vdk_parse_size(val, &a->count) < 0)
                return bad_number("count");
            a->has_count = true;
        } else if (KEY_IS("skip")) {
            if (vdk_parse_size(val, &a->skip) < 0)
                return bad_number("skip");
            a->has_skip = true;
        } else if (KEY_IS("if")) {
            a->in = val;
        } else if (KEY_IS("of")) {
            a->out = val;
        } else {
            return img_error("unrecognized operand %.*s", (int)klen, arg);
        }
#undef KEY_IS
    }
    if (!a->in || !a->out)
        return img_error("Must specify both input and output files");
    return -1;
}

/* Copy size - in_pos bytes from in_pos, block by block. */
static int dd_copy(struct vdk_node *src, uint64_t src_len, struct vdk_node *dst,
                   uint64_t bs, uint64_t in_pos, uint64_t size)
{
    size_t blen = bs < DD_PIECE ? (size_t)bs : DD_PIECE;
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 4096, blen) != 0)
        return img_error("out of memory");
    int ret = 0;
    for (uint64_t out_pos = 0; in_pos < size && !ret;) {
        uint64_t block = size - in_pos < bs ? size - in_pos : bs;
        for (uint64_t o = 0; o < block; o += blen) {
            uint64_t n = block - o < blen ? block - o : blen;
            int r = cvt_read(src, src_len, buf, n, in_pos + o);
            if (r < 0) {
                ret = img_error("error while reading from input image file: %s",
                                strerror(-r));
                break;
            }
            r = vdk_pwrite(dst, buf, n, out_pos + o, 0);
            if (r < 0) {
                ret = img_error("error while writing to output image file: %s",
                                strerror(-r));
                break;
            }
        }
        in_pos += block;
        out_pos += block;
    }
    free(buf);
    return ret;
}

int img_cmd_dd(int argc, char **argv)
{
    struct img_image_args ia = { 0 };
    const char *out_fmt = "raw";
    struct dd_args a = { .bs = 512 };
    struct vdk_node *src = NULL, *dst = NULL;
    struct vdk_error *err = NULL;
    int c, ret;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:O:U", img_image_long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("dd");
        case 'O': out_fmt = optarg; break;
        default: /* -f, -U, --image-opts, --object, or an error */
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if ((ret = parse_operands(argc, argv, &a)) >= 0)
        return ret;
    if (img_open(&src, a.in, ia.fmt, ia.image_opts, NULL, ia.flags, &err) < 0)
        return img_report(err, "Could not open '%s'", a.in);
    ret = 1;
    const struct vdk_driver *drv = vdk_driver_find(out_fmt);
    if (!drv || !vdk_driver_can_create(drv)) {
        img_error("Unknown file format '%s'", out_fmt);
        goto out;
    }
    int64_t len = vdk_get_length(src);
    if (len < 0) {
        img_error("Failed to get size for '%s'", a.in);
        goto out;
    }
    uint64_t size = cvt_round_len((uint64_t)len), in_pos;
    if (a.has_count && a.count <= INT64_MAX / a.bs && a.count * a.bs < size)
        size = a.count * a.bs;
    if (a.has_skip && (a.skip > INT64_MAX / a.bs || size < a.bs * a.skip)) {
        img_error("%s: cannot skip to specified offset", a.in);
        in_pos = size;
    } else {
        in_pos = a.has_skip ? a.bs * a.skip : 0;
    }
    char sz[32];
    snprintf(sz, sizeof(sz), "%" PRIu64, cvt_round_len(size - in_pos));
    struct vdk_opts *o = vdk_opts_new();
    if (!o || vdk_opts_set(o, "size", sz) < 0) {
        vdk_opts_free(o);
        img_error("out of memory");
        goto out;
    }
    if (vdk_create(out_fmt, a.out, o, &err) < 0) {
        img_report(err, "%s: error while creating output image", a.out);
        goto out;
    }
    if (img_open(&dst, a.out, out_fmt, false, NULL, VDK_O_RDWR, &err) < 0) {
        img_report(err, "Could not open '%s'", a.out);
        goto out;
    }
    ret = dd_copy(src, (uint64_t)len, dst, a.bs, in_pos, size);
    if (vdk_close(dst) < 0 && ret == 0)
        ret = img_error("error while flushing '%s'", a.out);
    dst = NULL;
out:
    if (dst)
        vdk_close(dst);
    vdk_close(src);
    return ret;
}
