/* SPDX-License-Identifier: MIT */
/* vdk-img resize: grow or shrink an image, qemu-img's messages. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

const char img_resize_options[] =
    "  -f fmt                 image format (probed when absent)\n"
    "  --preallocation=MODE   off (default), falloc or full, for the added space\n"
    "  --shrink               allow the image to become smaller (drops its tail)\n"
    "  -q                     quiet: no 'Image resized.' line\n"
    "  --image-opts           filename is an option string\n"
    "  --object def           define an object such as a secret\n"
    "  size                   new size, or +N / -N relative to the current one\n";

int img_cmd_resize(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "preallocation", required_argument, NULL, IMG_OPT_PREALLOC },
        { "shrink", no_argument, NULL, IMG_OPT_SHRINK },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { .flags = VDK_O_RDWR };
    bool quiet = false, shrink = false;
    enum vdk_prealloc prealloc = VDK_PREALLOC_OFF;
    int c;

    if (argc < 3)
        return img_usage_error("Not enough arguments");
    /* The size comes last and may be negative ("-1G"): take it out before
       getopt sees it as an option, as qemu-img does. */
    const char *size_arg = argv[--argc];
    argv[argc] = NULL;

    while ((c = getopt_long(argc, argv, ":f:hqt:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("resize");
        case 'q': quiet = true; break;
        case IMG_OPT_PREALLOC: {
            int i;
            for (i = 0; vdk_prealloc_names[i]; i++)
                if (strcmp(vdk_prealloc_names[i], optarg) == 0)
                    break;
            if (!vdk_prealloc_names[i])
                return img_error("Invalid preallocation mode '%s'", optarg);
            prealloc = (enum vdk_prealloc)i;
            break;
        }
        case IMG_OPT_SHRINK: shrink = true; break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting image file name and size");
    const char *filename = argv[optind];

    int rel = 0;
    if (size_arg[0] == '+' || size_arg[0] == '-') {
        rel = size_arg[0] == '+' ? 1 : -1;
        size_arg++;
    }
    uint64_t n = 0;
    if (img_parse_opt_size(NULL, "size", size_arg, &n))
        return 1;

    struct vdk_node *node = NULL;
    if (img_open_or_report(&node, filename, ia.fmt, ia.image_opts, NULL, ia.flags))
        return 1;
    int ret = 1;
    int64_t cur = vdk_get_length(node);
    if (cur < 0) {
        img_error("Could not get the size of '%s'", filename);
        goto out;
    }
    uint64_t total = n;
    if (rel > 0) {
        if (n > (uint64_t)INT64_MAX - (uint64_t)cur) {
            img_error("Value '%s' is out of range for parameter 'size'", size_arg);
            goto out;
        }
        total = (uint64_t)cur + n;
    } else if (rel < 0) {
        total = n >= (uint64_t)cur ? 0 : (uint64_t)cur - n;
    }
    if (total == 0) {
        img_error("New image size must be positive");
        goto out;
    }
    if (total < (uint64_t)cur && prealloc != VDK_PREALLOC_OFF) {
        img_error("Preallocation can only be used for growing images");
        goto out;
    }
    if (total < (uint64_t)cur && !shrink) {
        img_error("Use the --shrink option to perform a shrink operation.");
        img_error("warning: Shrinking an image will delete all data beyond the shrunken "
                  "image's end. Before performing such an operation, make sure there is "
                  "no important data there.");
        goto out;
    }
    struct vdk_error *err = NULL;
    if (vdk_truncate(node, total, prealloc, shrink, &err) < 0) {
        img_report(err, NULL);
        goto out;
    }
    if (!quiet)
        printf("Image resized.\n");
    ret = 0;
out:
    if (vdk_close(node) < 0 && ret == 0)
        ret = img_error("Could not flush '%s'", filename);
    return ret;
}
