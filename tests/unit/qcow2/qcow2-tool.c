/* SPDX-License-Identifier: MIT */
/*
 * qcow2-tool: a small driver of libvdk for the qcow2 tests, until vdk-img
 * has the matching commands.  Every subcommand goes through the public
 * API only.
 *
 *   qcow2-tool cat IMG [FMT]              guest bytes to stdout
 *   qcow2-tool create IMG OPTS            vdk_create("qcow2", IMG, OPTS)
 *   qcow2-tool write IMG RAW [-c] [-t N]  copy RAW into IMG (non-zero
 *                                         clusters; -c compressed; N threads)
 *   qcow2-tool io IMG OP OFF LEN [BYTE]   OP: write (pattern BYTE), zero,
 *                                         zero-unmap, discard, read (to stdout)
 *   qcow2-tool check IMG [leaks|all]      exit 0 clean, 2 corrupt, 3 leaks
 *   qcow2-tool info IMG                   one JSON line
 *   qcow2-tool map IMG                    block status runs
 *   qcow2-tool measure OPTS [IMG]         required and fully allocated
 *   qcow2-tool resize IMG SIZE [shrink]
 *   qcow2-tool amend IMG OPTS
 *   qcow2-tool rebase IMG BACKING FMT     change the backing file (-u)
 *
 * QCOW2_OPTS=... passes runtime options to the qcow2 node (commands that
 * name the format).
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdk/block.h"

static int die(struct vdk_error *err, const char *what)
{
    fprintf(stderr, "qcow2-tool: %s%s%s\n", what, err ? ": " : "", err ? vdk_error_msg(err) : "");
    vdk_error_free(err);
    return 1;
}

/* QCOW2_OPTS in the environment: runtime options for the image
   ("l2-cache-size=1k,refcount-cache-size=1k"). */
static int open_img(struct vdk_node **n, const char *path, const char *fmt, unsigned flags)
{
    struct vdk_error *err = NULL;
    struct vdk_opts *o = NULL;
    const char *env = getenv("QCOW2_OPTS");
    if (env && *env && fmt) {
        o = vdk_opts_new();
        if (vdk_opts_parse(o, env, NULL, &err) < 0) {
            vdk_opts_free(o);
            return die(err, "QCOW2_OPTS");
        }
    }
    if (vdk_open(n, path, fmt, o, flags, &err) < 0)
        return die(err, "open");
    return 0;
}

static struct vdk_opts *parse(const char *s)
{
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    if (s && *s && vdk_opts_parse(o, s, NULL, &err) < 0) {
        die(err, "options");
        exit(1);
    }
    return o;
}

static int cmd_cat(int argc, char **argv)
{
    struct vdk_node *n;
    if (open_img(&n, argv[2], argc > 3 ? argv[3] : NULL, 0))
        return 1;
    int64_t len = vdk_get_length(n);
    size_t bs = 1 << 20;
    char *buf = malloc(bs);
    for (int64_t off = 0; off < len;) {
        size_t c = (size_t)(len - off < (int64_t)bs ? len - off : (int64_t)bs);
        int r = vdk_pread(n, buf, c, (uint64_t)off, 0);
        if (r < 0) {
            fprintf(stderr, "qcow2-tool: read at %" PRId64 ": %s\n", off, strerror(-r));
            free(buf);
            vdk_close(n);
            return 1;
        }
        fwrite(buf, 1, c, stdout);
        off += (int64_t)c;
    }
    free(buf);
    vdk_close(n);
    return 0;
}

struct wjob {
    struct vdk_node *n;
    FILE *f;
    const char *path;
    uint64_t len, cs;
    unsigned flags;
    int idx, nthreads;
    int ret;
};

static void *write_worker(void *arg)
{
    struct wjob *j = arg;
    FILE *f = fopen(j->path, "rb");
    char *buf = malloc(j->cs);
    for (uint64_t off = (uint64_t)j->idx * j->cs; f && off < j->len;
         off += (uint64_t)j->nthreads * j->cs) {
        size_t c = (size_t)(j->len - off < j->cs ? j->len - off : j->cs);
        if (fseeko(f, (off_t)off, SEEK_SET) || fread(buf, 1, c, f) != c) {
            j->ret = -EIO;
            break;
        }
        if (vdk_buffer_is_zero(buf, c))
            continue;
        int r = vdk_pwrite(j->n, buf, c, off, j->flags);
        if (r < 0) {
            j->ret = r;
            break;
        }
    }
    if (!f)
        j->ret = -errno;
    if (f)
        fclose(f);
    free(buf);
    return NULL;
}

static int cmd_write(int argc, char **argv)
{
    struct vdk_node *n;
    unsigned flags = 0;
    int threads = 1;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "-c"))
            flags |= VDK_REQ_COMPRESSED;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
    }
    if (threads < 1 || threads > 16)
        threads = 1;
    if (open_img(&n, argv[2], "qcow2", VDK_O_RDWR))
        return 1;
    FILE *f = fopen(argv[3], "rb");
    if (!f)
        return die(NULL, "cannot open raw input");
    fseeko(f, 0, SEEK_END);
    uint64_t len = (uint64_t)ftello(f);
    fclose(f);
    uint64_t cs = vdk_node_cluster_size(n) ? vdk_node_cluster_size(n) : 65536;
    if (len > (uint64_t)vdk_get_length(n))
        len = (uint64_t)vdk_get_length(n);
    struct wjob jobs[16];
    pthread_t th[16];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (struct wjob){ n, NULL, argv[3], len, cs, flags, i, threads, 0 };
        pthread_create(&th[i], NULL, write_worker, &jobs[i]);
    }
    int ret = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].ret < 0 && !ret)
            ret = jobs[i].ret;
    }
    if (ret < 0) {
        fprintf(stderr, "qcow2-tool: write: %s\n", strerror(-ret));
        vdk_close(n);
        return 1;
    }
    return vdk_close(n) < 0;
}

static int cmd_io(int argc, char **argv)
{
    struct vdk_node *n;
    if (argc < 6)
        return die(NULL, "io IMG OP OFF LEN [BYTE]");
    const char *op = argv[3];
    uint64_t off = strtoull(argv[4], NULL, 0), len = strtoull(argv[5], NULL, 0);
    bool rd = !strcmp(op, "read");
    if (open_img(&n, argv[2], getenv("QCOW2_OPTS") ? "qcow2" : NULL, rd ? 0 : VDK_O_RDWR))
        return 1;
    int r;
    char *buf = malloc(len ? len : 1);
    if (!strcmp(op, "write")) {
        memset(buf, argc > 6 ? (int)strtol(argv[6], NULL, 0) : 0xa5, len);
        r = vdk_pwrite(n, buf, len, off, 0);
    } else if (!strcmp(op, "zero")) {
        r = vdk_pwrite_zeroes(n, off, len, 0);
    } else if (!strcmp(op, "zero-unmap")) {
        r = vdk_pwrite_zeroes(n, off, len, VDK_REQ_MAY_UNMAP);
    } else if (!strcmp(op, "discard")) {
        r = vdk_discard(n, off, len);
    } else if (rd) {
        r = vdk_pread(n, buf, len, off, 0);
        if (r == 0)
            fwrite(buf, 1, len, stdout);
    } else {
        r = -EINVAL;
    }
    free(buf);
    if (r < 0)
        fprintf(stderr, "qcow2-tool: %s: %s\n", op, strerror(-r));
    int c = vdk_close(n);
    return r < 0 || c < 0;
}

static int cmd_check(int argc, char **argv)
{
    struct vdk_node *n;
    unsigned fix = 0;
    if (argc > 3)
        fix = !strcmp(argv[3], "all") ? VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS
                                       : VDK_CHECK_FIX_LEAKS;
    if (open_img(&n, argv[2], "qcow2", fix ? VDK_O_RDWR | VDK_O_CHECK_REPAIR : 0))
        return 1;
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    struct vdk_error *err = NULL;
    if (vdk_check(n, &res, fix, &err) < 0) {
        vdk_close(n);
        return die(err, "check");
    }
    printf("corruptions=%d leaks=%d check_errors=%d corruptions_fixed=%d leaks_fixed=%d\n",
           res.corruptions, res.leaks, res.check_errors, res.corruptions_fixed,
           res.leaks_fixed);
    printf("image_end_offset=%" PRIu64 " total=%" PRIu64 " allocated=%" PRIu64
           " fragmented=%" PRIu64 " compressed=%" PRIu64 "\n", res.image_end_offset,
           res.total_clusters, res.allocated_clusters, res.fragmented_clusters,
           res.compressed_clusters);
    vdk_close(n);
    return res.corruptions ? 2 : res.leaks ? 3 : 0;
}

static int cmd_info(int argc, char **argv)
{
    struct vdk_node *n;
    if (open_img(&n, argv[2], NULL, VDK_O_NO_BACKING))
        return 1;
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    struct vdk_error *err = NULL;
    if (vdk_get_info(n, &info, &err) < 0) {
        vdk_close(n);
        return die(err, "info");
    }
    json_object *fs = info.format_specific ? json_tokener_parse(info.format_specific) : NULL;
    printf("{\"virtual-size\": %" PRIu64 ", \"cluster-size\": %u, \"dirty-flag\": %s, "
           "\"format-specific\": %s}\n", info.virtual_size, info.cluster_size,
           info.dirty_flag ? "true" : "false",
           fs ? json_object_to_json_string_ext(fs, JSON_C_TO_STRING_SPACED) : "null");
    json_object_put(fs);
    vdk_image_info_clear(&info);
    vdk_close(n);
    return 0;
}

static int cmd_map(int argc, char **argv)
{
    struct vdk_node *n;
    if (open_img(&n, argv[2], NULL, 0))
        return 1;
    int64_t len = vdk_get_length(n);
    for (uint64_t off = 0; off < (uint64_t)len;) {
        uint64_t pnum, map = 0;
        struct vdk_node *f = NULL;
        int st = vdk_block_status(n, off, (uint64_t)len - off, &pnum, &map, &f);
        if (st < 0) {
            fprintf(stderr, "qcow2-tool: block status: %s\n", strerror(-st));
            vdk_close(n);
            return 1;
        }
        printf("%" PRIu64 " %" PRIu64 " %s%s%s%s\n", off, pnum,
               st & VDK_BS_DATA ? "data " : "", st & VDK_BS_ZERO ? "zero " : "",
               st & VDK_BS_ALLOCATED ? "allocated " : "",
               st & VDK_BS_COMPRESSED ? "compressed" : "");
        off += pnum;
    }
    vdk_close(n);
    return 0;
}

static int cmd_measure(int argc, char **argv)
{
    struct vdk_opts *o = parse(argv[2]);
    struct vdk_node *src = NULL;
    struct vdk_measure m = VDK_MEASURE_INIT;
    struct vdk_error *err = NULL;
    if (argc > 3 && open_img(&src, argv[3], NULL, 0))
        return 1;
    int r = vdk_measure("qcow2", o, src, 0, &m, &err);
    vdk_opts_free(o);
    if (src)
        vdk_close(src);
    if (r < 0)
        return die(err, "measure");
    printf("required size: %" PRIu64 "\nfully allocated size: %" PRIu64 "\n", m.required,
           m.fully_allocated);
    return 0;
}

static int cmd_ctl(int argc, char **argv)
{
    struct vdk_node *n;
    struct vdk_error *err = NULL;
    const char *cmd = argv[1];
    if (open_img(&n, argv[2], "qcow2", VDK_O_RDWR | VDK_O_NO_BACKING))
        return 1;
    int r;
    if (!strcmp(cmd, "resize")) {
        uint64_t size;
        vdk_parse_size(argv[3], &size);
        r = vdk_truncate(n, size, VDK_PREALLOC_OFF, argc > 4, &err);
    } else if (!strcmp(cmd, "amend")) {
        struct vdk_opts *o = parse(argv[3]);
        r = vdk_amend(n, o, &err);
        vdk_opts_free(o);
    } else {
        r = vdk_change_backing_file(n, argv[3], argc > 4 ? argv[4] : NULL, &err);
    }
    vdk_close(n);
    return r < 0 ? die(err, cmd) : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: qcow2-tool CMD IMG ...\n");
        return 1;
    }
    const char *c = argv[1];
    if (!strcmp(c, "cat"))
        return cmd_cat(argc, argv);
    if (!strcmp(c, "create")) {
        struct vdk_error *err = NULL;
        if (vdk_create("qcow2", argv[2], parse(argc > 3 ? argv[3] : NULL), &err) < 0)
            return die(err, "create");
        return 0;
    }
    if (!strcmp(c, "write") && argc > 3)
        return cmd_write(argc, argv);
    if (!strcmp(c, "io"))
        return cmd_io(argc, argv);
    if (!strcmp(c, "check"))
        return cmd_check(argc, argv);
    if (!strcmp(c, "info"))
        return cmd_info(argc, argv);
    if (!strcmp(c, "map"))
        return cmd_map(argc, argv);
    if (!strcmp(c, "measure"))
        return cmd_measure(argc, argv);
    if ((!strcmp(c, "resize") || !strcmp(c, "amend") || !strcmp(c, "rebase")) && argc > 3)
        return cmd_ctl(argc, argv);
    fprintf(stderr, "qcow2-tool: unknown command '%s'\n", c);
    return 1;
}
