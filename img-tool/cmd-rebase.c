/* SPDX-License-Identifier: MIT */
/*
 * vdk-img rebase, over vdk_rebase():
 *   rebase [--object objectdef] [--image-opts] [-U] [-q] [-f fmt] [-t cache]
 *          [-T src_cache] [-p] [-u] [-c] -b backing_file [-F backing_fmt] filename
 * (-c, --compress as in qemu-img 8.2: the copied clusters are compressed).
 */
#include <getopt.h>
#include <stdio.h>

#include "img.h"
#include "progress.h"

const char img_rebase_options[] =
    "  -f fmt                 image format (probed when absent)\n"
    "  -b backing_file        the new backing file (\"\" for none)\n"
    "  -F backing_fmt         its format (recorded in the image)\n"
    "  -u                     unsafe: change the reference only, copy no data\n"
    "  -c, --compress         write the clusters the rebase copies compressed\n"
    "                         (qcow2)\n"
    "  -p                     show progress\n"
    "  -U                     open without taking image locks\n"
    "  -t/-T cache            cache modes\n";

int img_cmd_rebase(int argc, char **argv)
{
    struct img_image_args ia = { .flags = VDK_O_RDWR };
    const char *backing = NULL, *bfmt = NULL;
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "compress", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    bool quiet = false, unsafe = false, progress = false, compress = false;
    int c;
    img_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hf:t:T:b:F:upqUc", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("rebase");
        case 'T': break; /* source cache mode: reads use the default */
        case 'b': backing = optarg; break;
        case 'F': bfmt = optarg; break;
        case 'u': unsafe = true; break;
        case 'c': compress = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (!backing)
        return img_usage_error("Must specify backing file (-b)");
    if (bfmt && !vdk_driver_find(bfmt))
        return img_error("Unknown backing file format '%s'", bfmt);
    const char *filename = argv[optind];
    struct vdk_error *err = NULL;
    struct vdk_node *top = NULL;
    if (img_open_or_report(&top, filename, ia.fmt, ia.image_opts, NULL,
                           ia.flags | (unsafe ? VDK_O_NO_BACKING : 0)))
        return 1;
    /* qemu-img 7.2 no longer writes a backing file without its format. */
    if (*backing && !bfmt) {
        vdk_close(top);
        return img_error("Could not change the backing file to '%s': backing format must "
                         "be specified", backing);
    }
    struct progress *prog = progress_new(progress && !quiet, stdout);
    progress_update(prog, 0, 1);
    struct vdk_chain_opts o = { .struct_size = sizeof(o), .progress = img_chain_progress,
                                .opaque = prog, .compress = compress };
    int r = vdk_rebase(top, backing, bfmt, unsafe, &o, &err);
    return img_chain_done(top, filename, r, err, prog);
}
