/* SPDX-License-Identifier: MIT */
/*
 * vdk-img snapshot: list, create, apply and delete internal snapshots over
 * vdk_snapshot_*().  Listing a format without snapshots prints nothing,
 * as qemu-img does.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "output.h"

const char img_snapshot_options[] =
    "  -l            list the snapshots (default)\n"
    "  -c name       create a snapshot\n"
    "  -a name       apply (revert to) a snapshot\n"
    "  -d name       delete a snapshot\n"
    "  -f fmt        image format (probed when absent; vdk extension)\n"
    "  -q            quiet\n"
    "  -U, --force-share  open without taking image locks (-l only)\n"
    "  --image-opts  filename is an option string\n"
    "  --object def  define an object such as a secret\n";

enum action { ACT_NONE, ACT_LIST, ACT_CREATE, ACT_APPLY, ACT_DELETE };

static int list_snapshots(struct vdk_node *n)
{
    struct vdk_snapshot_info *list = NULL;
    struct vdk_error *err = NULL;
    int count = 0;
    int r = vdk_snapshot_list(n, &list, &count, &err);
    if (r == -ENOTSUP) {
        vdk_error_free(err);
        return 0;
    }
    if (r < 0)
        return img_report(err, "Could not list snapshots");
    if (count > 0) {
        printf("Snapshot list:\n");
        img_snapshot_print_header(stdout);
        for (int i = 0; i < count; i++)
            img_snapshot_print_row(stdout, &list[i]);
    }
    vdk_snapshot_list_free(list, count);
    return 0;
}

int img_cmd_snapshot(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { NULL, 0, NULL, 0 },
    };
    const char *name = NULL;
    struct img_image_args ia = { 0 };
    enum action act = ACT_NONE;
    int c;

    while ((c = getopt_long(argc, argv, ":a:c:d:f:hlqU", longopts, NULL)) != -1) {
        enum action a = ACT_NONE;
        switch (c) {
        case 'h': return img_command_help("snapshot");
        case 'l': a = ACT_LIST; break;
        case 'c': a = ACT_CREATE; break;
        case 'a': a = ACT_APPLY; break;
        case 'd': a = ACT_DELETE; break;
        case 'q': break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
        if (a != ACT_NONE) {
            if (act != ACT_NONE)
                return img_usage_error("Cannot mix '-l', '-a', '-c', '-d'");
            act = a;
            name = a == ACT_LIST ? NULL : optarg;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    if (act == ACT_NONE)
        act = ACT_LIST;
    if (act != ACT_LIST)
        ia.flags |= VDK_O_RDWR;
    const char *filename = argv[optind];

    struct vdk_node *n = NULL;
    if (img_open_or_report(&n, filename, ia.fmt, ia.image_opts, NULL, ia.flags | VDK_O_NO_BACKING))
        return 1;
    struct vdk_error *err = NULL;
    int ret = 0;
    switch (act) {
    case ACT_CREATE:
        if (vdk_snapshot_create(n, name, &err) < 0)
            ret = img_report(err, "Could not create snapshot '%s'", name);
        break;
    case ACT_APPLY:
        if (vdk_snapshot_goto(n, name, &err) < 0)
            ret = img_report(err, "Could not apply snapshot '%s'", name);
        break;
    case ACT_DELETE:
        if (vdk_snapshot_delete(n, name, &err) < 0)
            ret = img_report(err, "Could not delete snapshot '%s'", name);
        break;
    default:
        ret = list_snapshots(n);
        break;
    }
    if (vdk_close(n) < 0 && ret == 0)
        ret = img_error("Could not flush '%s'", filename);
    return ret;
}
