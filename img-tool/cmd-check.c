/* SPDX-License-Identifier: MIT */
/*
 * vdk-img check: consistency check (and repair with -r) with qemu-img's
 * texts, JSON fields and exit codes: 0 clean, 1 check not completed,
 * 2 corruptions, 3 leaks only, 63 format without checks.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "output.h"

const char img_check_options[] =
    "  -f fmt            image format (probed when absent)\n"
    "  -r leaks|all      repair leaked clusters only, or all errors\n"
    "  --output=ofmt     'human' (default) or 'json'\n"
    "  -q                quiet: print nothing in human mode\n"
    "  -T src_cache      cache mode for reading the image\n"
    "  -U, --force-share open without taking image locks\n"
    "  --image-opts      filename is an option string\n"
    "  --object def      define an object such as a secret\n";

enum { CHECK_NOT_SUPPORTED = 63 };

static void print_human(const struct vdk_check_result *r)
{
    if (!r->corruptions && !r->leaks && !r->check_errors) {
        printf("No errors were found on the image.\n");
    } else {
        if (r->corruptions)
            printf("\n%d errors were found on the image.\nData may be corrupted, or "
                   "further writes to the image may corrupt it.\n", r->corruptions);
        if (r->leaks)
            printf("\n%d leaked clusters were found on the image.\nThis means waste of "
                   "disk space, but no harm to data.\n", r->leaks);
        if (r->check_errors)
            printf("\n%d internal errors have occurred during the check.\n",
                   r->check_errors);
    }
    if (r->total_clusters && r->allocated_clusters)
        printf("%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% fragmented, "
               "%0.2f%% compressed clusters\n", r->allocated_clusters, r->total_clusters,
               (double)r->allocated_clusters * 100.0 / (double)r->total_clusters,
               (double)r->fragmented_clusters * 100.0 / (double)r->allocated_clusters,
               (double)r->compressed_clusters * 100.0 / (double)r->allocated_clusters);
    if (r->image_end_offset)
        printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

/* Optional members appear only when non-zero, as in qemu's ImageCheck. */
static void add_opt(struct json_object *o, const char *key, int64_t v)
{
    if (v)
        json_object_object_add(o, key, json_object_new_int64(v));
}

static void print_json(const char *filename, const char *format,
                       const struct vdk_check_result *r)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "filename", json_object_new_string(filename));
    json_object_object_add(o, "format", json_object_new_string(format));
    json_object_object_add(o, "check-errors", json_object_new_int64(r->check_errors));
    add_opt(o, "corruptions", r->corruptions);
    add_opt(o, "leaks", r->leaks);
    add_opt(o, "corruptions-fixed", r->corruptions_fixed);
    add_opt(o, "leaks-fixed", r->leaks_fixed);
    add_opt(o, "image-end-offset", (int64_t)r->image_end_offset);
    add_opt(o, "total-clusters", (int64_t)r->total_clusters);
    add_opt(o, "allocated-clusters", (int64_t)r->allocated_clusters);
    add_opt(o, "fragmented-clusters", (int64_t)r->fragmented_clusters);
    add_opt(o, "compressed-clusters", (int64_t)r->compressed_clusters);
    img_json_print(stdout, o);
    json_object_put(o);
}

int img_cmd_check(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "repair", required_argument, NULL, 'r' },
        { "output", required_argument, NULL, IMG_OPT_OUTPUT },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { .flags = VDK_O_CHECK_REPAIR, .output = IMG_OUTPUT_HUMAN };
    bool quiet = false;
    unsigned fix = 0;
    int c;

    while ((c = getopt_long(argc, argv, ":f:hqr:T:U", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("check");
        case 'q': quiet = true; break;
        case 'r':
            ia.flags |= VDK_O_RDWR;
            if (strcmp(optarg, "leaks") == 0)
                fix = VDK_CHECK_FIX_LEAKS;
            else if (strcmp(optarg, "all") == 0)
                fix = VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS;
            else
                return img_usage_error("Unknown option value for -r (expecting 'leaks' or "
                                       "'all'): %s", optarg);
            break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    const char *filename = argv[optind];
    if (fix && (ia.flags & VDK_O_SHARE))
        return img_error("--force-share/-U is not allowed with -r");

    struct vdk_node *n = NULL;
    if (img_open_or_report(&n, filename, ia.fmt, ia.image_opts, NULL, ia.flags | VDK_O_NO_BACKING))
        return 1;
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    struct vdk_error *err = NULL;
    int ret = 0;
    int r = vdk_check(n, &res, fix, &err);
    if (r == -ENOTSUP) {
        vdk_error_free(err);
        vdk_close(n);
        img_error("This image format does not support checks");
        return CHECK_NOT_SUPPORTED;
    }
    if (r == 0 && (res.corruptions_fixed || res.leaks_fixed)) {
        int lf = res.leaks_fixed, cf = res.corruptions_fixed;
        if (ia.output == IMG_OUTPUT_HUMAN && !quiet)
            printf("The following inconsistencies were found and repaired:\n\n"
                   "    %d leaked clusters\n    %d corruptions\n\n"
                   "Double checking the fixed image now...\n", lf, cf);
        r = vdk_check(n, &res, 0, &err);
        res.leaks_fixed = lf;
        res.corruptions_fixed = cf;
    }
    if (r == 0) {
        if (ia.output == IMG_OUTPUT_JSON)
            print_json(filename, vdk_node_driver_name(n), &res);
        else if (!quiet)
            print_human(&res);
    }
    if (r < 0 || res.check_errors) {
        /* qemu-img's words: the errno's text only.  Drivers print what
           they found on stderr as they go, as qemu's do. */
        vdk_error_free(err);
        if (r < 0)
            img_error("Check failed: %s", strerror(-r));
        else
            img_error("Check failed");
        ret = 1;
    } else if (res.corruptions) {
        ret = 2;
    } else if (res.leaks) {
        ret = 3;
    }
    if (vdk_close(n) < 0 && ret == 0)
        ret = img_error("Could not flush '%s'", filename);
    return ret;
}
