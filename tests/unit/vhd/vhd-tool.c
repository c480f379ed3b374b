/* SPDX-License-Identifier: MIT */
/*
 * vhd-tool: a small libvdk client for the VHD shell tests, until vdk-img
 * has the commands.  Images are opened with format "vpc" unless FMT= is
 * given in the environment.
 *
 *   vhd-tool create FILE OPTS          vdk_create("vpc", FILE, OPTS)
 *   vhd-tool cat IMG                   guest bytes to stdout
 *   vhd-tool import RAW IMG            write RAW's non-zero 64 KiB chunks into IMG
 *   vhd-tool write IMG OFF LEN BYTE    fill a range with one byte value
 *   vhd-tool zero IMG OFF LEN          write zeroes
 *   vhd-tool info IMG                  virtual size, cluster size, format json
 *   vhd-tool check IMG [leaks|all]     vdk_check, prints the counters
 *   vhd-tool map IMG                   block status through the chain
 *   vhd-tool open IMG                  open and close (error tests)
 * NO_BACKING=1 in the environment opens without the backing chain.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/block.h"

#define CHUNK (64u << 10)

static int die(struct vdk_error *err)
{
    fprintf(stderr, "vhd-tool: %s\n", vdk_error_msg(err));
    vdk_error_free(err);
    return 1;
}

static int open_img(struct vdk_node **n, const char *path, unsigned flags)
{
    struct vdk_error *err = NULL;
    const char *fmt = getenv("FMT");
    if (getenv("NO_BACKING"))
        flags |= VDK_O_NO_BACKING;
    if (vdk_open(n, path, fmt ? fmt : "vpc", NULL, flags, &err) < 0)
        return die(err);
    return 0;
}

static int io_fail(const char *what, int r)
{
    fprintf(stderr, "vhd-tool: %s: %s\n", what, strerror(-r));
    return 1;
}

static int cmd_cat(struct vdk_node *n)
{
    uint8_t *buf = malloc(CHUNK);
    int64_t len = vdk_get_length(n);
    for (int64_t off = 0; buf && off < len; off += CHUNK) {
        uint64_t c = (uint64_t)(len - off) < CHUNK ? (uint64_t)(len - off) : CHUNK;
        int r = vdk_pread(n, buf, c, (uint64_t)off, 0);
        if (r < 0) {
            free(buf);
            return io_fail("read", r);
        }
        fwrite(buf, 1, c, stdout);
    }
    free(buf);
    return buf ? 0 : 1;
}

static int cmd_import(struct vdk_node *n, const char *raw)
{
    FILE *f = fopen(raw, "rb");
    uint8_t *buf = malloc(CHUNK);
    size_t got;
    uint64_t off = 0;
    int r = 0;
    if (!f || !buf) {
        perror(raw);
        free(buf);
        return 1;
    }
    while (r == 0 && (got = fread(buf, 1, CHUNK, f)) > 0) {
        if (!vdk_buffer_is_zero(buf, got))
            r = vdk_pwrite(n, buf, got, off, 0);
        off += got;
    }
    fclose(f);
    free(buf);
    return r < 0 ? io_fail("write", r) : 0;
}

static int cmd_info(struct vdk_node *n)
{
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    struct vdk_error *err = NULL;
    if (vdk_get_info(n, &info, &err) < 0)
        return die(err);
    printf("virtual-size %" PRIu64 "\ncluster-size %" PRIu32 "\n", info.virtual_size,
           info.cluster_size);
    if (info.format_specific)
        printf("%s\n", info.format_specific); /* plain JSON text, no slash escapes */
    const char *b = vdk_node_backing_name(n);
    if (b)
        printf("backing %s %s\n", b, vdk_node_backing_format(n));
    vdk_image_info_clear(&info);
    return 0;
}

static int cmd_check(struct vdk_node *n, const char *mode)
{
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    struct vdk_error *err = NULL;
    unsigned fix = 0;
    if (mode && strcmp(mode, "leaks") == 0)
        fix = VDK_CHECK_FIX_LEAKS;
    else if (mode && strcmp(mode, "all") == 0)
        fix = VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS;
    if (vdk_check(n, &res, fix, &err) < 0)
        return die(err);
    printf("corruptions %d\nleaks %d\ncorruptions-fixed %d\nleaks-fixed %d\n"
           "allocated %" PRIu64 "\ntotal %" PRIu64 "\nend %" PRIu64 "\n", res.corruptions,
           res.leaks, res.corruptions_fixed, res.leaks_fixed, res.allocated_clusters,
           res.total_clusters, res.image_end_offset);
    return res.corruptions ? 2 : res.leaks ? 3 : 0;
}

static int cmd_map(struct vdk_node *n)
{
    int64_t len = vdk_get_length(n);
    uint64_t off = 0;
    while (off < (uint64_t)len) {
        uint64_t pnum = 0;
        int depth = 0;
        int r = vdk_block_status_above(n, NULL, off, (uint64_t)len - off, &pnum, NULL, NULL,
                                       &depth);
        if (r < 0)
            return io_fail("block status", r);
        printf("%" PRIu64 " %" PRIu64 " depth=%d%s%s%s\n", off, pnum, depth,
               (r & VDK_BS_DATA) ? " data" : "", (r & VDK_BS_ZERO) ? " zero" : "",
               (r & VDK_BS_ALLOCATED) ? " allocated" : "");
        off += pnum;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    int rc;
    if (argc < 3) {
        fprintf(stderr, "usage: vhd-tool create|cat|import|write|zero|info|check|map|open ...\n");
        return 1;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "create") == 0) {
        struct vdk_opts *o = vdk_opts_new();
        if (argc > 3 && vdk_opts_parse(o, argv[3], NULL, &err) < 0) {
            vdk_opts_free(o);
            return die(err);
        }
        const char *fmt = getenv("FMT");
        return vdk_create(fmt ? fmt : "vpc", argv[2], o, &err) < 0 ? die(err) : 0;
    }
    bool rw = !strcmp(cmd, "import") || !strcmp(cmd, "write") || !strcmp(cmd, "zero") ||
              (!strcmp(cmd, "check") && argc > 3);
    const char *img = strcmp(cmd, "import") == 0 && argc > 3 ? argv[3] : argv[2];
    if (open_img(&n, img, rw ? VDK_O_RDWR : 0))
        return 1;
    if (strcmp(cmd, "cat") == 0) {
        rc = cmd_cat(n);
    } else if (strcmp(cmd, "import") == 0) {
        rc = cmd_import(n, argv[2]);
    } else if ((strcmp(cmd, "write") == 0 && argc == 6) ||
               (strcmp(cmd, "zero") == 0 && argc == 5)) {
        uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
        int r;
        if (cmd[0] == 'z') {
            r = vdk_pwrite_zeroes(n, off, len, 0);
        } else {
            uint8_t *buf = malloc(len ? len : 1);
            if (!buf)
                return 1;
            memset(buf, (int)strtol(argv[5], NULL, 0), len);
            r = vdk_pwrite(n, buf, len, off, 0);
            free(buf);
        }
        rc = r < 0 ? io_fail("write", r) : 0;
    } else if (strcmp(cmd, "info") == 0) {
        rc = cmd_info(n);
    } else if (strcmp(cmd, "check") == 0) {
        rc = cmd_check(n, argc > 3 ? argv[3] : NULL);
    } else if (strcmp(cmd, "map") == 0) {
        rc = cmd_map(n);
    } else if (strcmp(cmd, "open") == 0) {
        rc = 0;
    } else {
        fprintf(stderr, "vhd-tool: bad command or arguments\n");
        rc = 1;
    }
    int r = vdk_close(n);
    if (r < 0 && rc == 0)
        rc = io_fail("close", r);
    return rc;
}
