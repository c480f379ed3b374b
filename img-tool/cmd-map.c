/* SPDX-License-Identifier: MIT */
/*
 * vdk-img map: the allocation map of an image through its backing chain,
 * from vdk_block_status_above(), merged and printed exactly like qemu-img
 * map (JSON lines or the human "Offset Length Mapped to File" table).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"
#include "output.h"

const char img_map_options[] =
    "  -f fmt               image format (probed when absent)\n"
    "  --output=ofmt        'human' (default) or 'json'\n"
    "  --start-offset=OFS   first byte to map (default 0)\n"
    "  --max-length=LEN     map at most LEN bytes\n"
    "  -U, --force-share    open without taking image locks\n"
    "  --image-opts         filename is an option string\n"
    "  --object def         define an object such as a secret\n";

/* One extent as qemu-img's MapEntry. */
struct map_entry {
    uint64_t start, length, offset;
    int depth;
    bool data, zero, present, has_offset;
    struct vdk_node *file; /* whose bytes offset refers to (has_offset) */
};

/* Bound on one block-status query, as qemu-img uses. */
#define MAP_CHUNK (1ull << 30)

static int entry_at(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                    struct map_entry *e)
{
    uint64_t pnum = 0, map = 0;
    struct vdk_node *file = NULL;
    int depth = 0;
    int r = vdk_block_status_above(n, NULL, offset, bytes, &pnum, &map, &file, &depth);
    if (r < 0)
        return r;
    *e = (struct map_entry){
        .start = offset,
        .length = pnum,
        .depth = depth,
        .data = r & VDK_BS_DATA,
        .zero = r & VDK_BS_ZERO,
        .present = r & VDK_BS_ALLOCATED,
        .has_offset = (r & VDK_BS_OFFSET_VALID) && file,
        .offset = map,
        .file = file,
    };
    if (!e->has_offset) {
        e->offset = 0;
        e->file = NULL;
    }
    return 0;
}

static bool mergeable(const struct map_entry *a, const struct map_entry *b)
{
    if (a->length == 0 || a->data != b->data || a->zero != b->zero ||
        a->present != b->present || a->depth != b->depth || a->has_offset != b->has_offset)
        return false;
    if (!a->has_offset)
        return true;
    return a->file == b->file && a->offset + a->length == b->offset;
}

/* Human output lists data only; zeros (read or stored) are left out. */
static int print_entry(enum img_output out, const struct map_entry *e, bool more)
{
    if (out == IMG_OUTPUT_JSON) {
        printf("{ \"start\": %" PRIu64 ", \"length\": %" PRIu64 ", \"depth\": %d, "
               "\"present\": %s, \"zero\": %s, \"data\": %s", e->start, e->length, e->depth,
               e->present ? "true" : "false", e->zero ? "true" : "false",
               e->data ? "true" : "false");
        if (e->has_offset)
            printf(", \"offset\": %" PRIu64, e->offset);
        fputs(more ? "},\n" : "}", stdout);
        return 0;
    }
    if (e->data && !e->has_offset)
        return img_error("File contains external, encrypted or compressed clusters.");
    if (e->data && !e->zero) {
        const char *fn = vdk_node_filename(e->file);
        printf("%#-16" PRIx64 "%#-16" PRIx64 "%#-16" PRIx64 "%s\n", e->start, e->length,
               e->offset, fn ? fn : "");
    }
    return 0;
}

int img_cmd_map(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, IMG_OPT_OUTPUT },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "force-share", no_argument, NULL, 'U' },
        { "start-offset", required_argument, NULL, 's' },
        { "max-length", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    struct img_image_args ia = { .output = IMG_OUTPUT_HUMAN };
    uint64_t start = 0, max_len = INT64_MAX;
    int c;

    while ((c = getopt_long(argc, argv, ":f:hU", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': return img_command_help("map");
        case 's':
            if (img_parse_num_arg("start offset", optarg, &start))
                return 1;
            break;
        case 'l':
            if (img_parse_num_arg("max length", optarg, &max_len))
                return 1;
            break;
        default:
            if (img_image_opt(&ia, c, optarg, argv))
                return 1;
        }
    }
    if (optind != argc - 1)
        return img_usage_error("Expecting one image file name");

    struct vdk_node *n = NULL;
    if (img_open_or_report(&n, argv[optind], ia.fmt, ia.image_opts, NULL, ia.flags))
        return 1;
    int64_t len = vdk_get_length(n);
    if (len < 0) {
        vdk_close(n);
        return img_error("Could not get the size of '%s'", argv[optind]);
    }
    uint64_t end = (uint64_t)len;
    if (max_len < end && start < end - max_len)
        end = start + max_len;

    if (ia.output == IMG_OUTPUT_HUMAN)
        printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File");
    else
        putchar('[');
    struct map_entry curr = { .start = start }, next;
    int ret = 0;
    for (uint64_t off = start; off < end; off += next.length) {
        int r = entry_at(n, off, (end - off < MAP_CHUNK ? end - off : MAP_CHUNK), &next);
        if (r < 0) {
            ret = img_error("Could not read the allocation status of '%s' at %" PRIu64
                            ": %s", argv[optind], off, strerror(-r));
            break;
        }
        if (mergeable(&curr, &next)) {
            curr.length += next.length;
            continue;
        }
        if (curr.length && print_entry(ia.output, &curr, true)) {
            ret = 1;
            break;
        }
        curr = next;
    }
    /* qemu-img prints the last entry even when empty (a zero-length image). */
    if (ret == 0 && print_entry(ia.output, &curr, false))
        ret = 1;
    if (ia.output == IMG_OUTPUT_JSON)
        fputs("]\n", stdout);
    vdk_close(n);
    return ret;
}
