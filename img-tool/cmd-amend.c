/* SPDX-License-Identifier: MIT */
/*
 * vdk-img amend: change create-time options of an existing image through
 * vdk_amend(); formats that cannot do it say so in one line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "progress.h"

const char img_amend_options[] =
    "  -o options    options to change; '-o help' (with -f) lists the format's options\n"
    "  -f fmt        image format (probed when absent)\n"
    "  -t cache      cache mode (default writeback)\n"
    "  -p            show progress\n"
    "  -q            quiet\n"
    "  --force       allow changes that may be unsafe (e.g. dropping encryption keys)\n"
    "  --image-opts  filename is an option string\n"
    "  --object def  define an object such as a secret\n";

static int amend_help(const char *fmt)
{
    if (!fmt)
        return img_error("Please specify the format with -f to list its options");
    const struct vdk_driver *drv = vdk_driver_find(fmt);
    if (!drv || !vdk_driver_is_format(drv))
        return img_error("Unknown file format '%s'", fmt);
    const struct vdk_opt_desc *t = vdk_driver_create_opts(drv);
    if (!t || !vdk_driver_can_amend(drv))
        return img_error("Format driver '%s' does not support option amendment", fmt);
    char title[128];
    snprintf(title, sizeof(title), "Amend options for '%s':", fmt);
    vdk_opts_print_help(stdout, title, t);
    return 0;
}

int img_cmd_amend(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force", no_argument, NULL, IMG_OPT_FORCE },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { .flags = VDK_O_RDWR };
    struct vdk_opts *o = NULL;
    bool help = false, progress = false, quiet = false;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":f:ho:pqt:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("amend");
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        case IMG_OPT_FORCE: break;
        case 'o':
            if (img_add_o_option(&o, optarg, &help))
                goto out;
            break;
        default:
            if (img_image_opt(&ia, c, optarg, argv)) {
                ret = 1;
                goto out;
            }
        }
    }
    if (help) {
        ret = amend_help(ia.fmt);
        goto out;
    }
    if (!o) {
        ret = img_usage_error("Must specify options (-o)");
        goto out;
    }
    if (optind != argc - 1) {
        ret = img_error("Expecting one image file name");
        goto out;
    }
    const char *filename = argv[optind];
    struct vdk_node *n = NULL;
    if (img_open_or_report(&n, filename, ia.fmt, ia.image_opts, NULL, ia.flags))
        goto out;
    struct vdk_error *err = NULL;
    struct progress *prog = progress_new(progress && !quiet, stdout);
    progress_update(prog, 0, 1);
    int r = vdk_amend(n, o, &err);
    progress_close(prog, r);
    if (r == -ENOTSUP) {
        vdk_error_free(err);
        ret = img_error("Format driver '%s' does not support option amendment",
                        vdk_node_driver_name(n));
    } else if (r < 0) {
        ret = img_report(err, "Error while amending options");
    } else {
        ret = 0;
    }
    if (vdk_close(n) < 0 && ret == 0)
        ret = img_error("Could not flush '%s'", filename);
out:
    vdk_opts_free(o);
    return ret;
}
