/* SPDX-License-Identifier: MIT */
/*
 * vdk-img bitmap: add, remove, clear, enable, disable and merge persistent
 * dirty bitmaps, as qemu-img 7.2 does: the actions run in the order given,
 * on one bitmap, and the first failure stops with "Operation OP on bitmap
 * NAME failed: reason".  --disabled (a vdk extension; qemu-img spells it
 * "--add --disable") makes --add create the bitmap disabled.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

const char img_bitmap_options[] =
    "  --add         create the bitmap (enabled unless --disabled)\n"
    "  --remove      delete the bitmap from the image\n"
    "  --clear       mark every chunk clean\n"
    "  --enable      let writes mark the bitmap\n"
    "  --disable     stop writes from marking the bitmap\n"
    "  --merge SRC   OR the bitmap SRC into the bitmap (from -b's image if given)\n"
    "  --disabled    with --add: create the bitmap disabled (vdk extension)\n"
    "  -g size       granularity of a new bitmap (power of 2, 512 to 2G; default\n"
    "                the cluster size between 4k and 64k)\n"
    "  -b file       image holding the --merge source bitmap\n"
    "  -F fmt        format of the -b image\n"
    "  -f fmt        image format (probed when absent)\n"
    "  --image-opts  filename is an option string\n"
    "  --object def  define an object such as a secret\n";

enum {
    OPT_ADD = 512, OPT_REMOVE, OPT_CLEAR, OPT_ENABLE, OPT_DISABLE, OPT_MERGE,
    OPT_DISABLED,
};

struct action {
    int kind;
    const char *src;   /* --merge */
};

static const char *op_name(int kind)
{
    switch (kind) {
    case OPT_ADD: return "add";
    case OPT_REMOVE: return "remove";
    case OPT_CLEAR: return "clear";
    case OPT_ENABLE: return "enable";
    case OPT_DISABLE: return "disable";
    default: return "merge";
    }
}

static int run_action(struct vdk_node *n, struct vdk_node *src, const struct action *a,
                      const char *bitmap, uint64_t gran, bool disabled)
{
    struct vdk_error *err = NULL;
    int r;
    switch (a->kind) {
    case OPT_ADD:
        r = vdk_bitmap_op(n, disabled ? VDK_BITMAP_ADD_DISABLED : VDK_BITMAP_ADD, bitmap,
                          gran, &err);
        break;
    case OPT_REMOVE: r = vdk_bitmap_op(n, VDK_BITMAP_REMOVE, bitmap, 0, &err); break;
    case OPT_CLEAR: r = vdk_bitmap_op(n, VDK_BITMAP_CLEAR, bitmap, 0, &err); break;
    case OPT_ENABLE: r = vdk_bitmap_op(n, VDK_BITMAP_ENABLE, bitmap, 0, &err); break;
    case OPT_DISABLE: r = vdk_bitmap_op(n, VDK_BITMAP_DISABLE, bitmap, 0, &err); break;
    default: r = vdk_bitmap_merge(n, bitmap, src ? src : n, a->src, &err); break;
    }
    if (r == 0)
        return 0;
    return img_report(err, "Operation %s on bitmap %s failed", op_name(a->kind), bitmap);
}

int img_cmd_bitmap(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "add", no_argument, NULL, OPT_ADD },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "clear", no_argument, NULL, OPT_CLEAR },
        { "enable", no_argument, NULL, OPT_ENABLE },
        { "disable", no_argument, NULL, OPT_DISABLE },
        { "merge", required_argument, NULL, OPT_MERGE },
        { "disabled", no_argument, NULL, OPT_DISABLED },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { 0 };
    struct action *acts = calloc((size_t)argc + 1, sizeof(*acts));
    size_t nacts = 0;
    const char *src_file = NULL, *src_fmt = NULL;
    uint64_t gran = 0;
    bool add = false, merge = false, disabled = false;
    int c, ret = 1;
    if (!acts)
        return img_error("out of memory");
    while ((c = getopt_long(argc, argv, ":b:F:f:g:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': free(acts); return img_command_help("bitmap");
        case 'b': src_file = optarg; break;
        case 'F': src_fmt = optarg; break;
        case 'g':
            if (img_parse_num_arg("granularity", optarg, &gran))
                goto out;
            break;
        case OPT_DISABLED: disabled = true; break;
        case OPT_ADD: case OPT_REMOVE: case OPT_CLEAR: case OPT_ENABLE: case OPT_DISABLE:
        case OPT_MERGE:
            acts[nacts].kind = c;
            acts[nacts++].src = c == OPT_MERGE ? optarg : NULL;
            add |= c == OPT_ADD;
            merge |= c == OPT_MERGE;
            break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                goto out;
        }
    }
    if (!nacts) {
        img_error("Need at least one of --add, --remove, --clear, --enable, --disable, "
                  "or --merge");
        goto out;
    }
    if (gran && !add) {
        img_error("granularity only supported with --add");
        goto out;
    }
    if (disabled && !add) {
        img_error("--disabled only supported with --add");
        goto out;
    }
    if (src_fmt && !src_file) {
        img_error("-F only supported with -b");
        goto out;
    }
    if (src_file && !merge) {
        img_error("Merge bitmap source file only supported with --merge");
        goto out;
    }
    if (optind != argc - 2) {
        img_error("Expecting filename and bitmap name");
        goto out;
    }
    const char *filename = argv[optind], *bitmap = argv[optind + 1];
    struct vdk_node *n = NULL, *src = NULL;
    if (img_open_or_report(&n, filename, ia.fmt, ia.image_opts, NULL,
                           ia.flags | VDK_O_RDWR | VDK_O_NO_BACKING))
        goto out;
    if (src_file && img_open_or_report(&src, src_file, src_fmt, false, NULL,
                                       VDK_O_NO_BACKING)) {
        vdk_close(n);
        goto out;
    }
    ret = 0;
    for (size_t i = 0; i < nacts && ret == 0; i++)
        ret = run_action(n, src, &acts[i], bitmap, gran, disabled);
    if (src)
        vdk_close(src);
    if (vdk_close(n) < 0 && ret == 0)
        ret = img_error("Could not flush '%s'", filename);
out:
    free(acts);
    return ret;
}
