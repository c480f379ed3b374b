/* SPDX-License-Identifier: MIT */
/*
 * vdk-img measure: how large an image of the output format would be, for a
 * given size or for the data of an existing image.  The figures come from
 * the output format's driver through vdk_measure(), so every format that
 * implements .measure works here unchanged.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "output.h"

const char img_measure_options[] =
    "  -O output_fmt   format to measure for (default raw)\n"
    "  -o options      create options of the output format; '-o help' lists them\n"
    "  --size N        measure an empty image of N bytes (k, M, G, T, P, E suffixes)\n"
    "  -f fmt          format of the source image (probed when absent)\n"
    "  --output=ofmt   'human' (default) or 'json'\n"
    "  -U, --force-share  open the source without taking image locks\n"
    "  --image-opts    filename is an option string\n"
    "  --object def    define an object such as a secret\n";

/* Every -o key must belong to the output format or its protocol. */
static int check_keys(const char *fmt, const struct vdk_opts *o)
{
    const struct vdk_driver *drv = vdk_driver_find(fmt), *file = vdk_driver_find("file");
    const char *k, *v;
    for (size_t i = 0; vdk_opts_nth(o, i, &k, &v); i++) {
        if (vdk_opt_desc_find(vdk_driver_create_opts(drv), k) ||
            (file && vdk_opt_desc_find(vdk_driver_create_opts(file), k)))
            continue;
        img_error("Invalid parameter '%s'", k);
        return img_error("Invalid options for file format '%s'", fmt);
    }
    return 0;
}

static int print_result(enum img_output output, const struct vdk_measure *m)
{
    if (output == IMG_OUTPUT_HUMAN) {
        printf("required size: %" PRIu64 "\nfully allocated size: %" PRIu64 "\n",
               m->required, m->fully_allocated);
        if (m->has_bitmaps)
            printf("bitmaps size: %" PRIu64 "\n", m->bitmaps);
        return 0;
    }
    struct json_object *o = json_object_new_object();
    if (!o)
        return img_error("out of memory");
    if (m->has_bitmaps)
        json_object_object_add(o, "bitmaps", json_object_new_int64((int64_t)m->bitmaps));
    json_object_object_add(o, "required", json_object_new_int64((int64_t)m->required));
    json_object_object_add(o, "fully-allocated",
                           json_object_new_int64((int64_t)m->fully_allocated));
    img_json_print(stdout, o);
    json_object_put(o);
    return 0;
}

int img_cmd_measure(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, IMG_OPT_OUTPUT },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "size", required_argument, NULL, IMG_OPT_SIZE },
        { NULL, 0, NULL, 0 },
    };
    const char *out_fmt = "raw", *snapshot = NULL;
    struct img_image_args ia = { .output = IMG_OUTPUT_HUMAN };
    struct vdk_opts *o = NULL;
    bool have_size = false, help = false;
    uint64_t size = 0;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, ":f:hl:o:O:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("measure");
        case 'O': out_fmt = optarg; break;
        case 'l': snapshot = optarg; break;
        case 'o':
            if (img_add_o_option(&o, optarg, &help))
                goto out;
            break;
        case IMG_OPT_SIZE:
            if (img_parse_size_arg(optarg, &size))
                goto out;
            have_size = true;
            break;
        default:
            if (img_image_opt(&ia, c, optarg, argv)) {
                ret = 1;
                goto out;
            }
        }
    }
    const struct vdk_driver *drv = vdk_driver_find(out_fmt);
    if (!drv || !vdk_driver_is_format(drv)) {
        ret = img_error("Unknown file format '%s'", out_fmt);
        goto out;
    }
    if (help) {
        vdk_create_print_help(out_fmt, "", stdout);
        ret = 0;
        goto out;
    }
    if (have_size && optind < argc) {
        ret = img_error("--size N cannot be used together with a filename.");
        goto out;
    }
    if (!have_size && optind != argc - 1) {
        ret = img_error("Either --size N or one filename must be specified.");
        goto out;
    }
    if (snapshot) {
        ret = img_error("Measuring an internal snapshot (-l) is not supported");
        goto out;
    }
    if (!o && !(o = vdk_opts_new())) {
        ret = img_error("out of memory");
        goto out;
    }
    if (check_keys(out_fmt, o))
        goto out;

    struct vdk_node *src = NULL;
    if (!have_size && img_open_or_report(&src, argv[optind], ia.fmt, ia.image_opts, NULL, ia.flags))
        goto out;
    struct vdk_measure m = VDK_MEASURE_INIT;
    struct vdk_error *err = NULL;
    if (vdk_measure(out_fmt, o, src, size, &m, &err) < 0)
        ret = img_report(err, NULL);
    else
        ret = print_result(ia.output, &m);
    if (src)
        vdk_close(src);
out:
    vdk_opts_free(o);
    return ret;
}
