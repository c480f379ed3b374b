/* SPDX-License-Identifier: MIT */
/*
 * vdk-img convert: qemu-img convert's command line, checks and messages;
 * the copying itself is the engine in convert.c.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert.h"
#include "vdk/ratelimit.h"

enum {
    OPT_TARGET_IMAGE_OPTS = IMG_OPT_FORCE + 1,
    OPT_TARGET_IS_ZERO,
    OPT_BITMAPS,
    OPT_SKIP_BROKEN,
    OPT_SALVAGE,
};

struct convert_args {
    struct img_image_args src; /* -f, -U, -T, --image-opts, --object */
    const char *out_fmt, *cache;
    const char *backing, *backing_fmt, *snapshot;
    struct vdk_opts *create_opts; /* accumulated -o */
    bool create_help;
    bool explicit_sparse;
    uint64_t min_sparse;
    int workers;
    bool out_of_order, compress, copy_offload, progress, quiet;
    bool no_create, tgt_image_opts, target_is_zero;
    bool bitmaps, skip_broken; /* --bitmaps, --skip-broken-bitmaps */
    uint64_t rate;  /* -r, bytes/s; 0: no limit */
    bool salvage;
};

const char img_convert_options[] =
    "  -f fmt                 format of the sources (probed when absent)\n"
    "  -O output_fmt          format of the output (default raw)\n"
    "  -o options             create options of the output format (-o help)\n"
    "  -B backing_file        the output keeps this backing file: ranges the\n"
    "                         sources leave to it are not copied\n"
    "  -F backing_fmt         format of the backing file\n"
    "  -n                     the output exists: do not create it\n"
    "  -c                     compress, in all workers at once; clusters are\n"
    "                         stored in completion order (-m 1: offset order)\n"
    "  -l snapshot_param      read an internal snapshot (name, id, or\n"
    "                         snapshot.id=..,snapshot.name=..)\n"
    "  -S sparse_size         zero runs of at least this size become holes\n"
    "                         (default 4k; 0 writes every byte)\n"
    "  -r rate_limit          write at most rate_limit bytes a second (k, M,\n"
    "                         G, ... suffixes; 0: no limit)\n"
    "  -m num_coroutines      parallel requests (default two per CPU, at most 8;\n"
    "                         up to 16)\n"
    "  -W                     allow out-of-order writes\n"
    "  -t cache, -T src_cache cache modes of the output and the sources\n"
    "  -C                     accepted; data is copied the ordinary way\n"
    "  -p                     show progress: a bar on a terminal, qemu-img's\n"
    "                         '    (N.NN/100%)' lines ending in CR otherwise\n"
    "  -q                     quiet\n"
    "  -U, --force-share      open the sources without taking image locks\n"
    "  --image-opts           the sources are option strings\n"
    "  --target-image-opts    the output is an option string (with -n)\n"
    "  --target-is-zero       the output reads as zeros already (with -n)\n"
    "  --salvage              read errors become zeros, with a warning per\n"
    "                         failed range, instead of stopping the copy\n"
    "  --object objectdef     define an object (a secret)\n"
    "  --bitmaps              copy the persistent dirty bitmaps (qcow2 to qcow2)\n"
    "  --skip-broken-bitmaps  with --bitmaps: skip inconsistent bitmaps\n"
    "Several sources are concatenated.\n";

static int parse_sparse(const char *s, uint64_t *out)
{
    uint64_t v;
    if (vdk_parse_size(s, &v) < 0)
        return img_error("Invalid buffer size for sparse output specified. You may use "
                         "k, M, G, T, P or E suffixes for kilobytes, megabytes, gigabytes, "
                         "terabytes, petabytes and exabytes.");
    if (v % CVT_SECTOR || v > CVT_MAX_SPARSE)
        return img_error("Invalid buffer size for sparse output specified. Valid sizes "
                         "are multiples of %u up to %u. Select 0 to disable sparse "
                         "detection (fully allocates output).", CVT_SECTOR, CVT_MAX_SPARSE);
    *out = v;
    return 0;
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct convert_args *a)
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "object", required_argument, NULL, IMG_OPT_OBJECT },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "target-image-opts", no_argument, NULL, OPT_TARGET_IMAGE_OPTS },
        { "target-is-zero", no_argument, NULL, OPT_TARGET_IS_ZERO },
        { "salvage", no_argument, NULL, OPT_SALVAGE },
        { "force-share", no_argument, NULL, 'U' },
        { "bitmaps", no_argument, NULL, OPT_BITMAPS },
        { "skip-broken-bitmaps", no_argument, NULL, OPT_SKIP_BROKEN },
        { NULL, 0, NULL, 0 },
    };
    struct vdk_error *err = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":hf:O:B:F:Cco:l:S:pt:T:qnm:WUr:", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'h':
            return img_command_help("convert");
        case 'O': a->out_fmt = optarg; break;
        case 'B': a->backing = optarg; break;
        case 'F': a->backing_fmt = optarg; break;
        case 'C': a->copy_offload = true; break;
        case 'c': a->compress = true; break;
        case 'o':
            if (strcmp(optarg, "help") == 0 || strcmp(optarg, "?") == 0) {
                a->create_help = true;
                break;
            }
            if (vdk_opts_parse(a->create_opts, optarg, NULL, &err) < 0)
                return img_report(err, "Invalid option list '%s'", optarg);
            break;
        case 'l': a->snapshot = optarg; break;
        case 'S':
            if (parse_sparse(optarg, &a->min_sparse))
                return 1;
            a->explicit_sparse = true;
            break;
        case 'p': a->progress = true; break;
        case 't': a->cache = optarg; break;
        case 'q': a->quiet = true; break;
        case 'n': a->no_create = true; break;
        case 'm': {
            uint64_t v;
            if (vdk_parse_uint(optarg, &v) < 0 || v < 1 || v > CVT_MAX_WORKERS)
                return img_error("Invalid number of coroutines. Allowed number of "
                                 "coroutines is between 1 and %d", CVT_MAX_WORKERS);
            a->workers = (int)v;
            break;
        }
        case 'W': a->out_of_order = true; break;
        case OPT_TARGET_IMAGE_OPTS: a->tgt_image_opts = true; break;
        case OPT_TARGET_IS_ZERO: a->target_is_zero = true; break;
        case OPT_BITMAPS: a->bitmaps = true; break;
        case OPT_SKIP_BROKEN: a->skip_broken = true; break;
        case OPT_SALVAGE: a->salvage = true; break;
        case 'r':
            if (img_parse_num_arg("rate limit", optarg, &a->rate))
                return 1;
            break;
        default: /* -f, -U, -T, --image-opts, --object, or an error */
            if (img_image_opt(&a->src, c, optarg, argv))
                return 1;
            break;
        }
    }
    if (!a->out_fmt && !a->tgt_image_opts)
        a->out_fmt = "raw";
    if (a->compress && a->copy_offload)
        return img_error("Cannot enable copy offloading when -c is used");
    /* As qemu-img: refused before the target is created. */
    const char *enc = a->compress ? vdk_opts_peek(a->create_opts, "encryption") : NULL;
    if (a->compress && (vdk_opts_peek(a->create_opts, "encrypt.format") ||
                        (enc && strcmp(enc, "off") != 0)))
        return img_error("Compression and encryption not supported at the same time");
    if (a->explicit_sparse && a->copy_offload)
        return img_error("Cannot enable copy offloading when -S is used");
    if (a->salvage && a->copy_offload)
        return img_error("Cannot use copy offloading in salvaging mode");
    if (a->tgt_image_opts && !a->no_create)
        return img_error("--target-image-opts requires use of -n flag");
    if (a->target_is_zero && !a->no_create)
        return img_error("--target-is-zero requires use of -n flag");
    if (a->no_create && vdk_opts_count(a->create_opts))
        return img_error("-o has no effect when skipping image creation");
    return -1;
}

/*
 * -l: "snapshot.id=ID,snapshot.name=NAME" (either or both) becomes open
 * options; a bare ID_OR_NAME is looked up in the image's snapshot table,
 * IDs first, as qemu-img does.  Returns 0 or an exit code.
 */
static int snapshot_open_opts(struct vdk_node *n, const char *param, struct vdk_opts **out)
{
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    if (!o)
        return img_error("out of memory");
    if (strncmp(param, "snapshot.", 9) == 0) {
        const char *k;
        if (vdk_opts_parse(o, param, NULL, &err) < 0) {
            vdk_opts_free(o);
            return img_report(err, "Invalid snapshot parameter '%s'", param);
        }
        for (size_t i = 0; vdk_opts_nth(o, i, &k, NULL); i++) {
            if (strcmp(k, "snapshot.id") != 0 && strcmp(k, "snapshot.name") != 0) {
                vdk_opts_free(o);
                return img_error("Invalid snapshot parameter '%s'", param);
            }
        }
        *out = o;
        return 0;
    }
    struct vdk_snapshot_info *list = NULL;
    int count = 0, found = -1;
    if (vdk_snapshot_list(n, &list, &count, &err) < 0) {
        vdk_opts_free(o);
        return img_report(err, "Failed to load snapshot");
    }
    for (int i = 0; i < count && found < 0; i++)
        if (strcmp(list[i].id, param) == 0)
            found = i;
    for (int i = 0; i < count && found < 0; i++)
        if (list[i].name && strcmp(list[i].name, param) == 0)
            found = i;
    int r = 0;
    if (found < 0)
        r = img_error("Failed to load snapshot: Can't find snapshot '%s'", param);
    else if (vdk_opts_set(o, "snapshot.id", list[found].id) < 0)
        r = img_error("out of memory");
    vdk_snapshot_list_free(list, count);
    if (r) {
        vdk_opts_free(o);
        return r;
    }
    *out = o;
    return 0;
}

static int open_sources(struct convert_args *a, char **names, size_t n,
                        struct cvt_source *src, uint64_t *total)
{
    unsigned flags = a->src.flags;
    *total = 0;
    if (a->snapshot && n > 1)
        return img_error("No support for concatenating multiple snapshot");
    for (size_t i = 0; i < n; i++) {
        struct vdk_error *err = NULL;
        if (img_open(&src[i].node, names[i], a->src.fmt, a->src.image_opts, NULL, flags, &err) < 0)
            return img_report(err, "Could not open '%s'", names[i]);
        if (a->snapshot) {
            /* Reopen read-only on the snapshot's tables. */
            struct vdk_opts *so = NULL;
            int r = snapshot_open_opts(src[i].node, a->snapshot, &so);
            vdk_close(src[i].node);
            src[i].node = NULL;
            if (r)
                return r;
            if (img_open(&src[i].node, names[i], a->src.fmt, a->src.image_opts, so, flags, &err) < 0)
                return img_report(err, "Failed to load snapshot");
        }
        int64_t len = vdk_get_length(src[i].node);
        if (len < 0)
            return img_error("Could not get size of '%s': %s", names[i], strerror((int)-len));
        src[i].name = names[i];
        src[i].len = (uint64_t)len;
        src[i].size = cvt_round_len((uint64_t)len);
        /* Not with -U (no lock keeps the file from shrinking) nor with
           -T none (the user asked to bypass the page cache). */
        src[i].align = vdk_node_cluster_size(src[i].node);
        if (src[i].align < vdk_node_alignment(src[i].node))
            src[i].align = vdk_node_alignment(src[i].node);
        if (*total > UINT64_MAX - src[i].size || *total + src[i].size > INT64_MAX)
            return img_error("The sources add up to more than 8 EiB");
        *total += src[i].size;
    }
    return -1;
}

/* Raw on a byte-aligned file: writing never reads the data in user space. */
static bool is_block_device(const char *filename)
{
    struct stat st;
    return stat(filename, &st) == 0 && S_ISBLK(st.st_mode);
}

/*
 * Raw over rbd: the objects are named by offset and nothing is laid out
 * by the order of the writes, so they need not wait for their turn (-W):
 * up to -m writes go to the cluster at once instead of one, with the same
 * result.
 */
static bool order_free_target(struct vdk_node *tgt)
{
    struct vdk_node *f = vdk_node_file(tgt);
    const char *fmt = vdk_node_driver_name(tgt);
    const char *proto = f ? vdk_node_driver_name(f) : fmt;
    return fmt && proto && strcmp(proto, "rbd") == 0 && (!f || strcmp(fmt, "raw") == 0);
}

/* Create the target unless -n.  Returns -1 to go on, else the exit code. */
static int create_target(struct convert_args *a, const char *out, uint64_t total)
{
    if (!a->out_fmt) { /* --target-image-opts (implies -n): the options decide */
        if (a->backing)
            return img_error("-B cannot be used with --target-image-opts");
        return -1;
    }
    const struct vdk_driver *drv = vdk_driver_find(a->out_fmt);
    if (!drv)
        return img_error("Unknown file format '%s'", a->out_fmt);
    if (a->no_create) /* -B/-F only shape a new image, as in qemu-img */
        return -1;
    const struct vdk_opt_desc *copts = vdk_driver_create_opts(drv);
    if (a->backing && !vdk_opt_desc_find(copts, "backing_file"))
        return img_error("Backing file not supported for file format '%s'", a->out_fmt);
    if (a->backing_fmt && !vdk_opt_desc_find(copts, "backing_fmt"))
        return img_error("Backing file format not supported for file format '%s'",
                         a->out_fmt);
    if (a->backing_fmt && !a->backing)
        return img_error("Backing format cannot be used without backing file");
    /* Refuse -c before clobbering anything: formats that compress offer a
       compression_type option (VMDK compresses streamOptimized and takes
       -c as plain writes otherwise, as qemu-img does).  open_target()
       checks the node exactly. */
    if (a->compress && !vdk_opt_desc_find(copts, "compression_type") &&
        strcmp(a->out_fmt, "vmdk") != 0)
        return img_error("Compression not supported for this file format");
    char size[32];
    snprintf(size, sizeof(size), "%" PRIu64, total);
    struct vdk_opts *o = vdk_opts_clone(a->create_opts);
    if (!o || vdk_opts_set(o, "size", size) < 0 ||
        (a->backing && vdk_opts_set(o, "backing_file", a->backing) < 0) ||
        (a->backing_fmt && vdk_opts_set(o, "backing_fmt", a->backing_fmt) < 0)) {
        vdk_opts_free(o);
        return img_error("out of memory");
    }
    struct vdk_error *err = NULL;
    if (vdk_create(a->out_fmt, out, o, &err) < 0)
        return img_report(err, "%s: error while converting %s", out, a->out_fmt);
    return -1;
}

static int open_target(struct convert_args *a, const char *out, uint64_t total,
                       struct vdk_node **tgt)
{
    unsigned flags = VDK_O_RDWR;
    if (img_parse_cache(a->cache ? a->cache : "unsafe", &flags) < 0)
        return img_error("Invalid cache option: %s", a->cache);
    struct vdk_error *err = NULL;
    /* As qemu-img: the target is opened with the create options that name
       key secrets ("key-secret", "encrypt.key-secret"), so an encrypted
       target can be written. */
    struct vdk_opts *keys = vdk_opts_new();
    const char *k, *v;
    if (!keys)
        return img_error("out of memory");
    for (size_t i = 0; a->create_opts && vdk_opts_nth(a->create_opts, i, &k, &v); i++) {
        size_t kl = strlen(k);
        if (kl >= 10 && strcmp(k + kl - 10, "key-secret") == 0 &&
            (kl == 10 || k[kl - 11] == '.') && vdk_opts_set(keys, k, v) < 0) {
            vdk_opts_free(keys);
            return img_error("out of memory");
        }
    }
    if (img_open(tgt, out, a->tgt_image_opts ? NULL : a->out_fmt, a->tgt_image_opts,
                 keys, flags, &err) < 0)
        return img_report(err, "Could not open '%s'", out);
    int64_t len = vdk_get_length(*tgt);
    if (len < 0)
        return img_error("Could not get size of '%s': %s", out, strerror((int)-len));
    if (a->no_create && (uint64_t)len < total)
        return img_error("output file is smaller than input file");
    if (a->compress && !(vdk_node_write_flags(*tgt) & VDK_REQ_COMPRESSED))
        return img_error("Compression not supported for this file format");
    return -1;
}

int img_cmd_convert(int argc, char **argv)
{
    struct convert_args a = { .min_sparse = 8 * CVT_SECTOR, .workers = 0 };
    struct cvt_source *src = NULL;
    struct vdk_node *tgt = NULL;
    struct progress *prog = NULL;
    struct vdk_created_file created = { .existed = true };
    const char *out_name = NULL;
    size_t nsrc = 0;
    int ret;
    if (!(a.create_opts = vdk_opts_new()))
        return img_error("out of memory");
    if ((ret = parse_args(argc, argv, &a)) >= 0)
        goto out;
    int nfiles = argc - optind;
    out_name = nfiles >= 1 ? argv[argc - 1] : NULL;
    if (a.create_help) {
        if (!vdk_driver_find(a.out_fmt ? a.out_fmt : "raw")) {
            ret = img_error("Unknown file format '%s'", a.out_fmt);
            goto out;
        }
        vdk_create_print_help(a.out_fmt ? a.out_fmt : "raw", out_name ? out_name : "",
                              stdout);
        ret = 0;
        goto out;
    }
    if (nfiles < 2) {
        ret = img_error("Must specify image file name");
        goto out;
    }
    if ((ret = cvt_bitmaps_check_args(a.bitmaps, a.skip_broken, (size_t)nfiles - 1)) >= 0)
        goto out;
    nsrc = (size_t)nfiles - 1;
    if (!(src = calloc(nsrc, sizeof(*src)))) {
        ret = img_error("out of memory");
        goto out;
    }
    uint64_t total = 0;
    if ((ret = open_sources(&a, argv + optind, nsrc, src, &total)) >= 0 ||
        (a.bitmaps && (ret = cvt_bitmaps_check_source(src[0].node, a.skip_broken)) >= 0))
        goto out;
    /* A target this convert makes is removed again if the convert fails. */
    if (!a.no_create)
        vdk_created_file_before(&created, out_name);
    ret = create_target(&a, out_name, total);
    if (!a.no_create)
        vdk_created_file_after(&created, out_name);
    if (ret >= 0 || (ret = open_target(&a, out_name, total, &tgt)) >= 0 ||
        (a.bitmaps && (ret = cvt_bitmaps_check_target(tgt)) >= 0))
        goto out;
    prog = progress_new(a.progress && !a.quiet, stdout);
    struct cvt_params p = {
        .src = src,
        .nsrc = nsrc,
        .target = tgt,
        .total = total,
        .min_sparse = a.min_sparse,
        .target_align = vdk_node_alignment(tgt),
        .target_has_backing = a.backing != NULL,
        .compressed = a.compress || vdk_node_needs_compressed_writes(tgt),
        .cluster_size = vdk_node_cluster_size(tgt),
        .workers = a.workers ? a.workers : cvt_default_workers(),
        .out_of_order = a.out_of_order || order_free_target(tgt),
        .progress = prog,
    };
    if ((a.rate && vdk_ratelimit_new(&p.limit, a.rate) < 0) ||
        (a.salvage && cvt_salvage_new(&p.salvage) < 0)) {
        ret = img_error("out of memory");
        goto out_run;
    }
    /* A new image reads as zeros (a block device or a LUKS image does
       not); so does a target the user vouches for. */
    p.has_zero_init = a.target_is_zero ||
                      (!a.no_create && !p.target_has_backing && !is_block_device(out_name) &&
                       vdk_node_has_zero_init(tgt));
    if (p.compressed && (p.cluster_size < CVT_SECTOR || CVT_BUF_SIZE % p.cluster_size)) {
        ret = img_error("Compression not supported for cluster size %" PRIu32,
                        p.cluster_size);
        goto out_run;
    }
    ret = cvt_run(&p);
    /* The warnings come after the progress display, whatever the outcome. */
    cvt_salvage_report(p.salvage, &p, a.quiet);
    if (ret == 0 && a.bitmaps)
        ret = cvt_bitmaps_copy(src[0].node, tgt, a.skip_broken);
    if (ret == 0) {
        int r = vdk_close(tgt);
        tgt = NULL;
        if (r < 0)
            ret = img_error("error while flushing '%s': %s", out_name, strerror(-r));
    }
out_run:
    vdk_ratelimit_free(p.limit);
    cvt_salvage_free(p.salvage);
out:
    if (tgt)
        vdk_close(tgt);
    if (ret != 0)
        vdk_created_file_remove(&created, out_name);
    for (size_t i = 0; i < nsrc; i++)
        if (src[i].node)
            vdk_close(src[i].node);
    free(src);
    progress_free(prog);
    vdk_opts_free(a.create_opts);
    return ret;
}
