/* SPDX-License-Identifier: MIT */
/*
 * vdk-img commit, over vdk_commit():
 *   commit [--object objectdef] [--image-opts] [-q] [-f fmt] [-t cache]
 *          [-b base] [-r rate_limit] [-d] [-p] filename
 */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "img.h"
#include "progress.h"
#include "vdk/ratelimit.h"

const char img_commit_options[] =
    "  -f fmt                 image format (probed when absent)\n"
    "  -t cache               cache mode for the images (default writeback)\n"
    "  -b base                commit into this image of the chain (default: the\n"
    "                         backing file); intermediate images leave the chain\n"
    "  -d                     keep the data in the image (do not empty it)\n"
    "  -p                     show progress\n"
    "  -q                     quiet\n"
    "  -r rate_limit          write at most rate_limit bytes a second into the\n"
    "                         base (k, M, G, ... suffixes; 0: no limit)\n";

/* Find the chain member whose file is `name` (as given, or the same file). */
static struct vdk_node *find_in_chain(struct vdk_node *top, const char *name)
{
    char *want = realpath(name, NULL);
    struct vdk_node *found = NULL;
    for (struct vdk_node *c = vdk_node_backing(top); c && !found; c = vdk_node_backing(c)) {
        const char *fn = vdk_node_filename(c);
        char *have = fn ? realpath(fn, NULL) : NULL;
        if ((want && have && strcmp(want, have) == 0) || (fn && strcmp(fn, name) == 0))
            found = c;
        free(have);
    }
    free(want);
    return found;
}

int img_cmd_commit(int argc, char **argv)
{
    struct img_image_args ia = { .flags = VDK_O_RDWR };
    const char *base_name = NULL;
    bool quiet = false, keep = false, progress = false;
    uint64_t rate = 0;
    int c;
    img_getopt_reset();
    while ((c = getopt_long(argc, argv, ":hf:t:b:r:dpq", img_image_long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("commit");
        case 'b': base_name = optarg; break;
        case 'r':
            if (img_parse_num_arg("rate limit", optarg, &rate))
                return 1;
            break;
        case 'd': keep = true; break;
        case 'p': progress = true; break;
        case 'q': quiet = true; break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");
    const char *filename = argv[optind];
    struct vdk_error *err = NULL;
    struct vdk_node *top = NULL;
    if (img_open_or_report(&top, filename, ia.fmt, ia.image_opts, NULL, ia.flags))
        return 1;
    struct vdk_node *base = NULL;
    if (base_name && !(base = find_in_chain(top, base_name))) {
        vdk_close(top);
        return img_error("Did not find '%s' in the backing chain of '%s'", base_name, filename);
    }
    struct vdk_chain_opts o = { .struct_size = sizeof(o) };
    if (rate && vdk_ratelimit_new(&o.limit, rate) < 0) {
        vdk_close(top);
        return img_error("out of memory");
    }
    struct progress *prog = progress_new(progress && !quiet, stdout);
    o.progress = img_chain_progress;
    o.opaque = prog;
    progress_update(prog, 0, 1);
    int r = vdk_commit(top, base, keep, &o, &err);
    int ret = img_chain_done(top, filename, r, err, prog);
    vdk_ratelimit_free(o.limit);
    if (ret == 0 && !quiet)
        printf("Image committed.\n");
    return ret;
}
