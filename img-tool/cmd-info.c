/* SPDX-License-Identifier: MIT */
/*
 * vdk-img info: what qemu-img info prints, field for field.  The JSON
 * object is built once (output.c) and the human text is derived from it,
 * so both outputs always agree.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "output.h"

const char img_info_options[] =
    "  -f fmt            image format (probed when absent)\n"
    "  --output=ofmt     'human' (default) or 'json'\n"
    "  --backing-chain   also describe every image of the backing chain\n"
    "  -U, --force-share open without taking image locks (image may be in use)\n"
    "  --image-opts      filename is an option string (driver=...,file.filename=...)\n"
    "  --object def      define an object such as a secret\n"
    "  -t cache          cache mode (none, writeback, writethrough, directsync, unsafe)\n";

int img_cmd_info(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, IMG_OPT_OUTPUT },
        { "backing-chain", no_argument, NULL, IMG_OPT_BACKING_CHAIN },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { .output = IMG_OUTPUT_HUMAN };
    bool chain = false;
    int c;

    while ((c = getopt_long(argc, argv, ":f:ht:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("info");
        case IMG_OPT_BACKING_CHAIN: chain = true; break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    const char *filename = argv[optind];

    /* Like qemu-img: without --backing-chain the backing file is not even
       opened, so info works on an overlay whose base is missing. */
    if (!chain)
        ia.flags |= VDK_O_NO_BACKING;
    /* Metadata only, as qemu-img info: works on images others write to. */
    ia.flags |= VDK_O_NO_IO;
    struct vdk_node *top = NULL;
    if (img_open_or_report(&top, filename, ia.fmt, ia.image_opts, NULL, ia.flags))
        return 1;

    struct json_object *list = json_object_new_array();
    int ret = list ? 0 : img_error("out of memory");
    for (struct vdk_node *n = top; n && ret == 0; n = chain ? vdk_node_backing(n) : NULL) {
        struct vdk_error *err = NULL;
        struct json_object *info = img_info_build(n, &err);
        if (!info) {
            ret = img_report(err, "%s", vdk_node_filename(n));
            break;
        }
        json_object_array_add(list, info);
    }
    if (ret == 0) {
        size_t count = json_object_array_length(list);
        if (ia.output == IMG_OUTPUT_JSON) {
            img_json_print(stdout, chain ? list : json_object_array_get_idx(list, 0));
        } else {
            for (size_t i = 0; i < count; i++) {
                if (i)
                    putchar('\n');
                img_info_print_human(stdout, json_object_array_get_idx(list, i));
            }
        }
    }
    json_object_put(list);
    vdk_close(top);
    return ret;
}
