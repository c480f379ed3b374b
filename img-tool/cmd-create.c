/* SPDX-License-Identifier: MIT */
/*
 * vdk-img create: make a new image.  Every -o option goes to the library,
 * which validates it against the format's and protocol's option tables,
 * so a new format needs no change here.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

const char img_create_options[] =
    "  -f fmt          image format (default raw); see 'vdk-img --help' for the list\n"
    "  -o options      comma separated format options; '-o help' lists them\n"
    "  -b backing_file backing file (copy-on-write formats only)\n"
    "  -F backing_fmt  format of the backing file\n"
    "  -u              do not open the backing file (size must then be given)\n"
    "  -q              quiet: no 'Formatting ...' line\n"
    "  --object def    define an object such as a secret (secret,id=ID,file=PATH)\n"
    "  size            virtual size, with optional k, M, G, T, P or E suffix\n";

/*
 * qemu-img prints the "Formatting" line in the order of its merged option
 * list, which is not the order of our tables.  Where we know qemu-img's
 * order we follow it so that logs compare equal; other options (and other
 * formats) follow in table order.
 */
static const char *const qemu_print_order_raw[] = {
    "size", "nocow", "preallocation", "extent_size_hint", NULL,
};

static const struct vdk_opt_desc *find_desc(const struct vdk_driver *fmt,
                                            const struct vdk_driver *proto, const char *k)
{
    const struct vdk_opt_desc *d = vdk_opt_desc_find(vdk_driver_create_opts(fmt), k);
    if (!d && proto)
        d = vdk_opt_desc_find(vdk_driver_create_opts(proto), k);
    return d;
}

static void print_one(const struct vdk_opt_desc *d, const char *v)
{
    uint64_t n;
    printf(" %s=", d->name);
    if ((d->type == VDK_OPT_SIZE && vdk_parse_size(v, &n) == 0) ||
        (d->type == VDK_OPT_NUMBER && vdk_parse_uint(v, &n) == 0)) {
        printf("%" PRIu64, n);
        return;
    }
    for (; *v; v++) { /* commas doubled, as they must be typed */
        putchar(*v);
        if (*v == ',')
            putchar(',');
    }
}

/* Set value, else the table's default, else nothing. */
static void print_opt(const struct vdk_opt_desc *d, const struct vdk_opts *o)
{
    const char *v = vdk_opts_peek(o, d->name);
    if (!v)
        v = d->def_value;
    if (v)
        print_one(d, v);
}

static bool in_list(const char *const *list, const char *k)
{
    for (; list && *list; list++)
        if (strcmp(*list, k) == 0)
            return true;
    return false;
}

static void print_formatting(const char *filename, const char *fmt_name,
                             const struct vdk_driver *fmt, const struct vdk_driver *proto,
                             const struct vdk_opts *o)
{
    const char *const *order = strcmp(fmt_name, "raw") == 0 ? qemu_print_order_raw : NULL;
    printf("Formatting '%s', fmt=%s", filename, fmt_name);
    for (const char *const *k = order; k && *k; k++) {
        const struct vdk_opt_desc *d = find_desc(fmt, proto, *k);
        if (d)
            print_opt(d, o);
    }
    for (const struct vdk_opt_desc *d = vdk_driver_create_opts(fmt); d && d->name; d++)
        if (!in_list(order, d->name))
            print_opt(d, o);
    for (const struct vdk_opt_desc *d = proto ? vdk_driver_create_opts(proto) : NULL;
         d && d->name; d++)
        if (!in_list(order, d->name) && !vdk_opt_desc_find(vdk_driver_create_opts(fmt), d->name))
            print_opt(d, o);
    /* Options outside both tables (for child nodes) as typed. */
    const char *k, *v;
    for (size_t i = 0; vdk_opts_nth(o, i, &k, &v); i++)
        if (!find_desc(fmt, proto, k))
            printf(" %s=%s", k, v);
    putchar('\n');
    fflush(stdout);
}

/* qemu-img's early check, before anything is printed: every key must be
   known to the format or the protocol.  Dotted child keys ("file.x") are
   left to the library. */
static int check_keys(const char *filename, const struct vdk_driver *fmt,
                      const struct vdk_driver *proto, const struct vdk_opts *o)
{
    const char *k, *v;
    for (size_t i = 0; vdk_opts_nth(o, i, &k, &v); i++) {
        if (strncmp(k, "file.", 5) == 0 || find_desc(fmt, proto, k))
            continue;
        return img_error("%s: Invalid parameter '%s'", filename, k);
    }
    return 0;
}

/* Open the backing image as qemu-img create does (relative to the new
   image); prints qemu-img's two-line error and returns 1 on failure. */
static int open_backing(const char *filename, const char *base, const char *base_fmt,
                        struct vdk_node **out)
{
    struct vdk_error *err = NULL;
    char *path = NULL;
    const char *slash = strrchr(filename, '/');
    if (base[0] != '/' && !vdk_filename_is_remote(base) && slash) {
        if (asprintf(&path, "%.*s%s", (int)(slash - filename + 1), filename, base) < 0)
            return img_error("out of memory");
    }
    int r = vdk_open(out, path ? path : base, base_fmt, NULL,
                     VDK_O_SHARE | VDK_O_NO_BACKING, &err);
    free(path);
    if (r < 0) {
        /* qemu-img prints the opener's own message here ("Could not open
           'b': No such file or directory", "Unsupported qcow2 version 5"). */
        fprintf(stderr, "%s: %s: %s\nCould not open backing image.\n", IMG_PROG, filename,
                vdk_error_msg(err));
        vdk_error_free(err);
        return 1;
    }
    return 0;
}

/* Size of the backing image, for "create -b base overlay" without a size. */
static int backing_size(const char *filename, const char *base, const char *base_fmt,
                        uint64_t *size)
{
    struct vdk_node *b = NULL;
    if (open_backing(filename, base, base_fmt, &b))
        return 1;
    int64_t len = vdk_get_length(b);
    vdk_close(b);
    if (len < 0)
        return img_error("%s: could not get the size of the backing image", filename);
    *size = (uint64_t)len;
    return 0;
}

/* -b without -F: refused as by qemu-img 7.2, which names what it probed. */
static int backing_without_format(const char *filename, const char *base, bool unsafe)
{
    struct vdk_node *b = NULL;
    if (unsafe)
        return img_error("%s: Backing file specified without backing format", filename);
    if (open_backing(filename, base, NULL, &b))
        return 1;
    fprintf(stderr, "%s: %s: Backing file specified without backing format\n"
            "Detected format of %s.\n", IMG_PROG, filename, vdk_node_driver_name(b));
    vdk_close(b);
    return 1;
}

int img_cmd_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { NULL, 0, NULL, 0 },
    };
    const char *fmt = "raw", *base = NULL, *base_fmt = NULL;
    char *o_base = NULL, *o_base_fmt = NULL; /* copies of -o backing_file/_fmt */
    struct vdk_opts *o = NULL;
    bool quiet = false, unsafe = false, help = false;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":F:b:f:ho:qu", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("create");
        case 'f': fmt = optarg; break;
        case 'b': base = optarg; break;
        case 'F': base_fmt = optarg; break;
        case 'q': quiet = true; break;
        case 'u': unsafe = true; break;
        case 'o':
            if (img_add_o_option(&o, optarg, &help))
                goto out;
            break;
        case IMG_OPT_OBJECT:
            if (img_add_object(optarg))
                goto out;
            break;
        default:
            ret = img_getopt_error(c, argv);
            goto out;
        }
    }
    const struct vdk_driver *drv = vdk_driver_find(fmt);
    if (help) {
        if (!drv || !vdk_driver_is_format(drv)) {
            ret = img_error("Unknown file format '%s'", fmt);
            goto out;
        }
        if (optind < argc) {
            vdk_create_print_help(fmt, argv[optind], stdout);
        } else {
            /* Without a file name the protocol is unknown: format options
               only, with qemu-img's hint. */
            char title[96];
            snprintf(title, sizeof(title), "Supported %s options:", fmt);
            vdk_opts_print_help(stdout, title, vdk_driver_create_opts(drv));
            printf("\nThe protocol level may support further options.\n"
                   "Specify the target filename to include those options.\n");
        }
        ret = 0;
        goto out;
    }
    if (optind >= argc) {
        ret = img_usage_error("Expecting image file name");
        goto out;
    }
    const char *filename = argv[optind++];
    const char *size_arg = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
        ret = img_usage_error("Unexpected argument: %s", argv[optind]);
        goto out;
    }
    if (!drv || !vdk_driver_can_create(drv)) {
        ret = img_error("%s: %s '%s'", filename,
                        drv ? "Format driver cannot create images:" : "Unknown file format",
                        fmt);
        goto out;
    }
    if (!o && !(o = vdk_opts_new())) {
        ret = img_error("out of memory");
        goto out;
    }
    const struct vdk_driver *proto = vdk_protocol_driver(filename);
    if (check_keys(filename, drv, proto, o))
        goto out;
    uint64_t size = 0;
    const char *osize = vdk_opts_peek(o, "size");
    if (osize && img_parse_opt_size(filename, "size", osize, &size))
        goto out;
    if (size_arg) {
        if (img_parse_size_arg(size_arg, &size))
            goto out;
        if (vdk_opts_has(o, "size")) {
            ret = img_error("%s: The image size must be specified only once", filename);
            goto out;
        }
    }
    /* As qemu-img: -o backing_file=/backing_fmt= count as -b/-F (libvirt
       passes -b FILE -o backing_fmt=FMT); -b and -F win over them. */
    if (!base && vdk_opts_peek(o, "backing_file"))
        base = o_base = strdup(vdk_opts_peek(o, "backing_file"));
    if (!base_fmt && vdk_opts_peek(o, "backing_fmt"))
        base_fmt = o_base_fmt = strdup(vdk_opts_peek(o, "backing_fmt"));
    if ((vdk_opts_peek(o, "backing_file") && !base) ||
        (vdk_opts_peek(o, "backing_fmt") && !base_fmt)) {
        ret = img_error("out of memory");
        goto out;
    }
    if (base || base_fmt) {
        if (!vdk_opt_desc_find(vdk_driver_create_opts(drv), "backing_file")) {
            ret = img_error("%s: Backing file not supported for file format '%s'",
                            filename, fmt);
            goto out;
        }
        if (base && !base_fmt) {
            ret = backing_without_format(filename, base, unsafe);
            goto out;
        }
        if ((base && vdk_opts_set(o, "backing_file", base) < 0) ||
            (base_fmt && vdk_opts_set(o, "backing_fmt", base_fmt) < 0)) {
            ret = img_error("out of memory");
            goto out;
        }
    }
    if (!size_arg && !vdk_opts_has(o, "size")) {
        if (!base || unsafe) {
            ret = img_error("%s: Image creation needs a size parameter", filename);
            goto out;
        }
        if (backing_size(filename, base, base_fmt, &size))
            goto out;
        size_arg = "";
    }
    if (size_arg) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, size);
        if (vdk_opts_set(o, "size", buf) < 0) {
            ret = img_error("out of memory");
            goto out;
        }
    }
    if (!quiet)
        print_formatting(filename, fmt, drv, proto, o);
    /* Like qemu-img, images are whole 512-byte sectors: "create x 1000"
       makes a 1024-byte image (the line above still shows 1000). */
    const char *sz = vdk_opts_peek(o, "size");
    if (sz && vdk_parse_size(sz, &size) == 0 && size % 512) {
        char buf[32];
        if (size > (uint64_t)INT64_MAX - 511) {
            ret = img_error("%s: Image size must be less than 8 EiB!", filename);
            goto out;
        }
        snprintf(buf, sizeof(buf), "%" PRIu64, (size + 511) & ~(uint64_t)511);
        if (vdk_opts_set(o, "size", buf) < 0) {
            ret = img_error("out of memory");
            goto out;
        }
    }
    struct vdk_error *err = NULL;
    int r = vdk_create(fmt, filename, o, &err);
    o = NULL; /* consumed */
    ret = r < 0 ? img_report(err, "%s", filename) : 0;
out:
    vdk_opts_free(o);
    free(o_base);
    free(o_base_fmt);
    return ret;
}
