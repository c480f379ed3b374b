/* SPDX-License-Identifier: MIT */
/* Helpers shared by vdk-img subcommands: errors, opening, cache modes. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <getopt.h>

#include "img.h"
#include "output.h"
#include "progress.h"
#include "vdk/secret.h"

int img_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", IMG_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int img_report(struct vdk_error *err, const char *context_fmt, ...)
{
    fprintf(stderr, "%s: ", IMG_PROG);
    if (context_fmt) {
        va_list ap;
        va_start(ap, context_fmt);
        vfprintf(stderr, context_fmt, ap);
        va_end(ap);
        fputs(": ", stderr);
    }
    fprintf(stderr, "%s\n", vdk_error_msg(err));
    /* qemu-img's hint after an inconsistent (crashed) dirty bitmap. */
    if (strstr(vdk_error_msg(err), "is inconsistent and cannot be used"))
        fprintf(stderr, "Try block-dirty-bitmap-remove to delete this bitmap from disk\n");
    vdk_error_free(err);
    return 1;
}

int img_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", IMG_PROG);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information\n", IMG_PROG);
    return 1;
}

int img_parse_cache(const char *mode, unsigned *flags)
{
    *flags &= ~(VDK_O_DIRECT | VDK_O_UNSAFE);
    if (strcmp(mode, "none") == 0 || strcmp(mode, "off") == 0)
        *flags |= VDK_O_DIRECT;
    else if (strcmp(mode, "directsync") == 0)
        *flags |= VDK_O_DIRECT;
    else if (strcmp(mode, "unsafe") == 0)
        *flags |= VDK_O_UNSAFE;
    else if (strcmp(mode, "writeback") != 0 && strcmp(mode, "writethrough") != 0)
        return -EINVAL;
    return 0;
}

int img_open(struct vdk_node **out, const char *filename, const char *fmt,
             bool image_opts, struct vdk_opts *extra, unsigned flags,
             struct vdk_error **errp)
{
    if (!image_opts)
        return vdk_open(out, filename, fmt, extra, flags, errp);
    if (fmt) {
        vdk_opts_free(extra);
        return vdk_error_setf(errp, EINVAL, "--image-opts and --format are mutually exclusive");
    }
    struct vdk_opts *o = vdk_opts_new();
    if (!o) {
        vdk_opts_free(extra);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    int r = vdk_opts_parse(o, filename, "file.filename", errp);
    if (r == 0 && extra)
        r = vdk_opts_merge(o, extra, NULL);
    vdk_opts_free(extra);
    if (r < 0) {
        vdk_opts_free(o);
        return r;
    }
    return vdk_open_opts(out, o, flags, errp);
}

int img_add_object(const char *def)
{
    struct vdk_error *err = NULL;
    if (vdk_object_add(def, &err) < 0)
        return img_report(err, NULL);
    return 0;
}

int img_parse_num_arg(const char *what, const char *s, uint64_t *out)
{
    int r = vdk_parse_size(s, out);
    if (r == -ERANGE)
        return img_error("Invalid %s specified. Must be between 0 and %lld.", what,
                         (long long)INT64_MAX);
    if (r < 0) {
        img_error("Invalid %s specified. You may use k, M, G, T, P or E suffixes for", what);
        return img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
                         "exabytes.");
    }
    return 0;
}

int img_parse_opt_size(const char *ctx, const char *key, const char *s, uint64_t *out)
{
    const char *sep = ctx ? ": " : "";
    int r = vdk_parse_size(s, out);
    if (r == -ERANGE)
        return img_error("%s%sValue '%s' is out of range for parameter '%s'", ctx ? ctx : "",
                         sep, s, key);
    if (r < 0) {
        img_error("%s%sParameter '%s' expects a non-negative number below 2^64",
                  ctx ? ctx : "", sep, key);
        fputs("Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
              "and exabytes, respectively.\n", stderr);
        return 1;
    }
    return 0;
}

int img_parse_size_arg(const char *s, uint64_t *out)
{
    return img_parse_num_arg("image size", s, out);
}

int img_getopt_error(int c, char **argv)
{
    const char *opt = argv[optind - 1];
    if (c == ':')
        return img_usage_error("missing argument for option '%s'", opt);
    /* For a short option inside a cluster ("-qx") name the character. */
    if (optopt && opt[0] == '-' && opt[1] != '-' && opt[2])
        return img_usage_error("unrecognized option '-%c'", optopt);
    return img_usage_error("unrecognized option '%s'", opt);
}

const struct option img_image_long_opts[] = {
    { "help", no_argument, NULL, 'h' },
    { "object", required_argument, NULL, IMG_OPT_OBJECT },
    { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
    { "force-share", no_argument, NULL, 'U' },
    { NULL, 0, NULL, 0 },
};

void img_chain_progress(uint64_t done, uint64_t total, void *opaque)
{
    progress_update(opaque, done, total);
}

int img_chain_done(struct vdk_node *top, const char *filename, int r, struct vdk_error *err,
                   struct progress *prog)
{
    progress_close(prog, r); /* 100% only when the operation succeeded */
    int cr = vdk_close(top);
    if (r < 0)
        return img_report(err, NULL);
    if (cr < 0)
        return img_error("could not flush '%s'", filename);
    return 0;
}

void img_getopt_reset(void)
{
    optind = 0; /* glibc: 0 also reinitialises the scanner */
    opterr = 0;
}

int img_command_help(const char *name)
{
    for (const struct img_command *c = img_commands; c->name; c++) {
        if (strcmp(c->name, name) != 0)
            continue;
        printf("usage: %s %s\n", IMG_PROG, c->synopsis);
        if (c->options)
            printf("\n%s", c->options);
        return 0;
    }
    return 1;
}

int img_open_or_report(struct vdk_node **out, const char *filename, const char *fmt,
                       bool image_opts, struct vdk_opts *extra, unsigned flags)
{
    struct vdk_error *err = NULL;
    if (image_opts && fmt) {
        vdk_opts_free(extra);
        return img_error("--image-opts and --format are mutually exclusive");
    }
    if (img_open(out, filename, fmt, image_opts, extra, flags, &err) < 0)
        return img_report(err, "Could not open '%s'", filename);
    return 0;
}

static bool o_is_help(const char *arg);

int img_add_o_option(struct vdk_opts **opts, const char *arg, bool *help)
{
    struct vdk_error *err = NULL;
    if (o_is_help(arg)) {
        *help = true;
        return 0;
    }
    if (!*opts && !(*opts = vdk_opts_new()))
        return img_error("out of memory");
    if (vdk_opts_parse(*opts, arg, NULL, &err) < 0)
        return img_report(err, "Invalid option list '%s'", arg);
    return 0;
}

static bool o_is_help(const char *arg)
{
    /* Elements are comma separated; ",," is a literal comma in a value. */
    const char *p = arg;
    while (*p) {
        size_t len = 0;
        while (p[len] && !(p[len] == ',' && p[len + 1] != ','))
            len += (p[len] == ',' && p[len + 1] == ',') ? 2 : 1;
        if ((len == 4 && strncmp(p, "help", 4) == 0) || (len == 1 && p[0] == '?'))
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

int img_image_opt(struct img_image_args *a, int opt, const char *arg, char **argv)
{
    enum img_output out;
    switch (opt) {
    case 'f':
        a->fmt = arg;
        return 0;
    case 'U':
    case IMG_OPT_FORCE_SHARE:
        a->flags |= VDK_O_SHARE;
        return 0;
    case 't':
    case 'T':
        if (img_parse_cache(arg, &a->flags) < 0)
            return img_error("Invalid %scache option: %s", opt == 'T' ? "source " : "", arg);
        return 0;
    case IMG_OPT_OUTPUT:
        if (img_parse_output(arg, &out))
            return 1;
        a->output = out;
        return 0;
    case IMG_OPT_IMAGE_OPTS:
        a->image_opts = true;
        return 0;
    case IMG_OPT_OBJECT:
        return img_add_object(arg) ? 1 : 0;
    default:
        return img_getopt_error(opt, argv);
    }
}
