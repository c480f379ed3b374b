/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot: boot a kernel under KVM on disk images for boot tests, and say
 * whether it worked with the exit code (see docs/vdk-boot.1.scd).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guest-boot/console.h"
#include "guest-boot/image/image.h"
#include "guest-boot/vm.h"
#include "guest-boot/x86/acpi.h"
#include "vdk/block.h"

/* Exit codes (documented in vdk-boot(1)). */
enum {
    EXIT_PASS = 0,
    EXIT_SETUP = 1,
    EXIT_TIMEOUT = 2,
    EXIT_PANIC = 3,
    EXIT_KVM = 4,
    EXIT_RESET = 5,
    EXIT_NO_MATCH = 6,
    EXIT_INTERRUPTED = 7,
};

#define MEM_MIN (32ull << 20)
#define MEM_MAX (1ull << 40)
#define MEM_DEFAULT (256ull << 20)
#define KERNEL_FILE_MAX (1ull << 30)
#define TIMEOUT_MAX (7 * 24 * 3600.0)

static const char *prog = "vdk-boot";

struct disk_opt {
    char *file;                  /* image, or the spec for messages */
    char *format;
    char *image_opts;            /* driver=...: options for vdk_open_opts */
    char *serial;
    bool read_only;
    bool snapshot;               /* writes go to a throwaway overlay */
    struct vdk_node *node;
    struct virtio_blk blk;
};

struct opts {
    const char *kernel, *initrd, *append, *expect, *console_log;
    uint64_t mem;
    int cpus;
    double timeout;
    bool quiet, verbose;
    struct disk_opt disk[MAX_DISKS];
    int ndisks;
    const char *from_image;      /* --kernel-from-image: auto, list, extract:DIR */
    int entry;                   /* --entry, -1: the image's default */
    struct img_loaded img;       /* the kernel read from the image */
    char *img_append;            /* the entry's options + --append */
};

static const uint8_t virtio_irqs[MAX_DISKS] = { 5, 6, 7, 10, 11, 12, 14, 15 };

static void usage(FILE *f)
{
    fprintf(f,
        "usage: %s --kernel FILE [options]\n"
        "       %s --disk IMAGE [options]   (the kernel the image would boot)\n"
        "  --kernel FILE        bzImage (64-bit boot protocol) or ELF vmlinux\n"
        "                       with a PVH note\n"
        "  --kernel-from-image=list   print the boot entries of the first disk\n"
        "  --entry N            boot entry N of that list (default: the image's)\n"
        "  --initrd FILE        initial ramdisk\n"
        "  --append STRING      kernel command line\n"
        "  --disk IMAGE[,format=F][,readonly=on][,snapshot=on][,serial=ID]\n"
        "                       virtio-blk disk (repeatable, up to %d)\n"
        "  --disk driver=D,OPTIONS[,readonly=on][,snapshot=on][,serial=ID]\n"
        "                       a disk given as node options, e.g. driver=fault,\n"
        "                       ops=read,offset=1M,length=4k,file.filename=IMAGE\n"
        "  --mem SIZE           guest RAM (default 256M; plain numbers are MiB)\n"
        "  --cpus N             vCPUs (default 1)\n"
        "  --expect REGEX       pass as soon as a console line matches\n"
        "  --timeout SECONDS    fail when the guest has not finished in time\n"
        "  --console-log FILE   copy the console to FILE\n"
        "  -q, --quiet          print only the verdict\n"
        "  -v, --verbose        print timings and setup details\n"
        "  -h, --help, -V, --version\n"
        "exit: 0 pass, 1 setup error, 2 timeout, 3 guest panic, 4 triple fault\n"
        "      or KVM error, 5 guest reset, 6 powered off without --expect\n"
        "      match, 7 interrupted\n", prog, prog, MAX_DISKS);
}

static int fail(const char *fmt, ...) VDK_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* --disk driver=...: the options describe a node (a filter such as
   fault over an image); vdk-boot's own keys are taken out.  Frees o. */
static int parse_disk_node(struct disk_opt *d, const char *spec, struct vdk_opts *o)
{
    struct vdk_error *err = NULL;
    char *serial = NULL;
    int r = -1;
    if (vdk_opts_has(o, "format") || vdk_opts_has(o, "file")) {
        fail("--disk '%s': driver= describes the node; use file.filename= and "
             "file.driver= instead of file= and format=", spec);
        goto out;
    }
    const char *s = vdk_opts_get(o, "serial");
    if (s && strlen(s) > VIRTIO_BLK_ID_BYTES) {
        fail("--disk '%s': serial is longer than %d bytes", spec, VIRTIO_BLK_ID_BYTES);
        goto out;
    }
    if (vdk_opts_get_bool(o, "readonly", false, &d->read_only, &err) < 0 ||
        vdk_opts_get_bool(o, "snapshot", false, &d->snapshot, &err) < 0) {
        fail("--disk: %s", vdk_error_msg(err));
        goto out;
    }
    serial = strndup(s ? s : vdk_opts_peek(o, "driver"), VIRTIO_BLK_ID_BYTES);
    vdk_opts_del(o, "serial");
    vdk_opts_del(o, "readonly");
    vdk_opts_del(o, "snapshot");
    d->image_opts = vdk_opts_to_string(o);
    d->file = strdup(spec);
    d->serial = serial;
    serial = NULL;
    if (!d->image_opts || !d->file || !d->serial) {
        fail("out of memory");
        goto out;
    }
    r = 0;
out:
    free(serial);
    vdk_error_free(err);
    vdk_opts_free(o);
    return r;
}

static int parse_disk(struct disk_opt *d, const char *spec)
{
    struct vdk_error *err = NULL;
    struct vdk_opts *o = vdk_opts_new();
    int r = -1;

    if (!o)
        return fail("out of memory");
    if (vdk_opts_parse(o, spec, "file", &err) < 0)
        goto out;
    if (vdk_opts_has(o, "driver"))
        return parse_disk_node(d, spec, o);
    const char *file = vdk_opts_get(o, "file");
    const char *fmt = vdk_opts_get(o, "format");
    const char *serial = vdk_opts_get(o, "serial");
    if (vdk_opts_get_bool(o, "readonly", false, &d->read_only, &err) < 0 ||
        vdk_opts_get_bool(o, "snapshot", false, &d->snapshot, &err) < 0 ||
        vdk_opts_check_unused(o, "--disk", &err) < 0)
        goto out;
    if (!file || !*file) {
        fail("--disk '%s': no image file named", spec);
        goto out_quiet;
    }
    if (fmt && !vdk_driver_is_format(vdk_driver_find(fmt))) {
        fail("--disk '%s': unknown image format '%s'", spec, fmt);
        goto out_quiet;
    }
    if (serial && strlen(serial) > VIRTIO_BLK_ID_BYTES) {
        fail("--disk '%s': serial is longer than %d bytes", spec,
             VIRTIO_BLK_ID_BYTES);
        goto out_quiet;
    }
    d->file = strdup(file);
    d->format = fmt ? strdup(fmt) : NULL;
    if (!serial) {
        const char *base = strrchr(file, '/');
        serial = base ? base + 1 : file;
    }
    d->serial = strndup(serial, VIRTIO_BLK_ID_BYTES);
    r = 0;
    goto out_quiet;
out:
    fail("--disk: %s", vdk_error_msg(err));
out_quiet:
    vdk_error_free(err);
    vdk_opts_free(o);
    return r;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
    enum { OPT_KERNEL = 256, OPT_INITRD, OPT_APPEND, OPT_DISK, OPT_MEM, OPT_CPUS,
           OPT_EXPECT, OPT_TIMEOUT, OPT_LOG, OPT_FROM_IMAGE, OPT_ENTRY };
    static const struct option lo[] = {
        { "kernel", required_argument, NULL, OPT_KERNEL },
        { "initrd", required_argument, NULL, OPT_INITRD },
        { "append", required_argument, NULL, OPT_APPEND },
        { "disk", required_argument, NULL, OPT_DISK },
        { "mem", required_argument, NULL, OPT_MEM },
        { "cpus", required_argument, NULL, OPT_CPUS },
        { "expect", required_argument, NULL, OPT_EXPECT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "console-log", required_argument, NULL, OPT_LOG },
        { "kernel-from-image", required_argument, NULL, OPT_FROM_IMAGE },
        { "entry", required_argument, NULL, OPT_ENTRY },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    o->mem = MEM_DEFAULT;
    o->cpus = 1;
    o->append = "";
    o->entry = -1;
    while ((c = getopt_long(argc, argv, "qvhV", lo, NULL)) != -1) {
        switch (c) {
        case OPT_KERNEL: o->kernel = optarg; break;
        case OPT_INITRD: o->initrd = optarg; break;
        case OPT_APPEND: o->append = optarg; break;
        case OPT_EXPECT: o->expect = optarg; break;
        case OPT_LOG: o->console_log = optarg; break;
        case OPT_FROM_IMAGE:
            if (strcmp(optarg, "auto") && strcmp(optarg, "list") &&
                (strncmp(optarg, "extract:", 8) || !optarg[8]))
                return fail("bad --kernel-from-image '%s': give auto, list "
                            "or extract:DIR", optarg);
            o->from_image = optarg;
            break;
        case OPT_ENTRY: {
            uint64_t v;
            if (vdk_parse_uint(optarg, &v) < 0 || v >= IMG_CHOICES_MAX)
                return fail("bad --entry '%s': give 0 to %d", optarg,
                            IMG_CHOICES_MAX - 1);
            o->entry = (int)v;
            break;
        }
        case 'q': o->quiet = true; break;
        case 'v': o->verbose = true; break;
        case 'h': usage(stdout); exit(EXIT_PASS);
        case 'V': printf("vdk-boot %s\n", vdk_version()); exit(EXIT_PASS);
        case OPT_DISK:
            if (o->ndisks == MAX_DISKS)
                return fail("too many --disk options (at most %d)", MAX_DISKS);
            if (parse_disk(&o->disk[o->ndisks], optarg) < 0)
                return -1;
            o->ndisks++;
            break;
        case OPT_MEM: {
            uint64_t v;
            const char *s = optarg;
            size_t n = strlen(s);
            int r = vdk_parse_size(s, &v);
            if (r == 0 && n && s[n - 1] >= '0' && s[n - 1] <= '9') {
                if (v > MEM_MAX >> 20)
                    r = -ERANGE;
                v <<= 20; /* qemu's -m: plain numbers are MiB */
            }
            if (r < 0 || v < MEM_MIN || v > MEM_MAX)
                return fail("bad --mem '%s': give a size from 32M to 1T", s);
            o->mem = v & ~0xfffffull;
            break;
        }
        case OPT_CPUS: {
            uint64_t v;
            if (vdk_parse_uint(optarg, &v) < 0 || v < 1 || v > MAX_CPUS)
                return fail("bad --cpus '%s': give 1 to %d", optarg, MAX_CPUS);
            o->cpus = (int)v;
            break;
        }
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            double t = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(t > 0) || t > TIMEOUT_MAX)
                return fail("bad --timeout '%s': give seconds, above 0",
                            optarg);
            o->timeout = t;
            break;
        }
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc)
        return fail("unexpected argument '%s' (see --help)", argv[optind]);
    if (o->kernel && (o->from_image || o->entry >= 0))
        return fail("--kernel and --kernel-from-image/--entry exclude each "
                    "other");
    if (o->kernel && !o->kernel[0])
        return fail("empty --kernel");
    if (!o->kernel && !o->ndisks)
        return fail("no --kernel given and no --disk to take it from "
                    "(see --help)");
    if (!o->kernel && o->initrd)
        return fail("--initrd needs --kernel (the image names its own)");
    return 0;
}

static int read_file(const char *what, const char *path, uint64_t max,
                     uint8_t **buf, size_t *len)
{
    struct vdk_error *err = NULL;
    if (vdk_read_file(path, what, (size_t)max, buf, len, &err) < 0) {
        fail("%s", vdk_error_msg(err));
        vdk_error_free(err);
        return -1;
    }
    return 0;
}

/* ---- the kernel from the image ---- */

static bool names_console(const char *s)
{
    for (const char *p = strstr(s, "console="); p; p = strstr(p + 1, "console="))
        if (p == s || p[-1] == ' ')
            return true;
    return false;
}

/*
 * No --kernel: the first disk's image names its kernel (opened read-only
 * for the reading, closed before the guest's open).  The command line is
 * the entry's options, then --append, with console=ttyS0 in front when
 * neither names a console.  Returns 0 when o->img holds the kernel, 1 when
 * the mode (list, extract) is done, -1 after printing an error.
 */
static int image_kernel(struct opts *o)
{
    struct disk_opt *d = &o->disk[0];
    struct vdk_error *err = NULL;
    struct vdk_node *n = NULL;
    struct img_disk disk;
    struct img_boot *b = calloc(1, sizeof(*b));
    const char *mode = o->from_image ? o->from_image : "auto";
    int r = -1;

    if (!b) {
        fail("out of memory");
        return -1;
    }
    if (vdk_open(&n, d->file, d->format, NULL, 0, &err) < 0 ||
        img_disk_from_node(&disk, n, &err) < 0 ||
        img_boot_scan(&disk, b, &err) < 0)
        goto out;
    if (b->pt.used_backup && !o->quiet)
        fprintf(stderr, "%s: warning: disk '%s': %s\n", prog, d->file,
                b->pt.note);
    if (!strcmp(mode, "list")) {
        img_boot_list(b, stdout);
        r = 1;
        goto out;
    }
    int idx = o->entry >= 0 ? o->entry : b->def;
    if (img_boot_load(b, idx, KERNEL_FILE_MAX, o->mem, &o->img, &err) < 0)
        goto out;
    const char *opts = o->img.cmdline;
    size_t cap = strlen(opts) + strlen(o->append) + 32;
    o->img_append = malloc(cap);
    if (!o->img_append) {
        fail("out of memory");
        goto out_quiet;
    }
    snprintf(o->img_append, cap, "%s%s%s%s%s",
             names_console(opts) || names_console(o->append) ? ""
                                                            : "console=ttyS0",
             names_console(opts) || names_console(o->append) || !*opts ? "" : " ",
             opts, *opts && *o->append ? " " : "", o->append);
    if (o->verbose)
        fprintf(stderr, "%s: entry %d '%s' of disk '%s': %zu-byte kernel, "
                "%zu-byte initrd\n", prog, idx, b->choice[idx].title, d->file,
                o->img.kernel_len, o->img.initrd_len);
    if (!strncmp(mode, "extract:", 8)) {
        free(o->img.cmdline);
        o->img.cmdline = o->img_append;
        o->img_append = NULL;
        if (img_extract(&o->img, mode + 8, &err) < 0)
            goto out;
        r = 1;
        goto out_quiet;
    }
    o->append = o->img_append;
    r = 0;
    goto out_quiet;
out:
    if (err)
        fail("disk '%s': %s", d->file, vdk_error_msg(err));
out_quiet:
    vdk_error_free(err);
    img_boot_free(b);
    free(b);
    if (n)
        vdk_close(n);
    if (r != 0)
        img_loaded_free(&o->img);
    return r;
}

/* ---- signals ---- */

static struct vm *signal_vm;
static volatile sig_atomic_t got_signal;

static void on_stop_signal(int sig)
{
    got_signal = sig;
    if (signal_vm) {
        uint64_t one = 1;
        ssize_t r = write(signal_vm->wake_fd, &one, sizeof(one));
        (void)r;
    }
}

static void on_fatal_signal(int sig)
{
    console_term_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(console_term_restore);
}

/* ---- run ---- */

static char *build_cmdline(const struct opts *o)
{
    size_t cap = strlen(o->append) + 64 * MAX_DISKS + 1;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = (size_t)snprintf(s, cap, "%s", o->append);
    for (int i = 0; i < o->ndisks; i++)
        n += (size_t)snprintf(s + n, cap - n, "%svirtio_mmio.device=%llu@0x%llx:%u",
                              n ? " " : "",
                              (unsigned long long)LAYOUT_VIRTIO_SIZE,
                              (unsigned long long)(LAYOUT_VIRTIO_BASE +
                                                   LAYOUT_VIRTIO_STRIDE * (unsigned)i),
                              virtio_irqs[i]);
    return s;
}

static int setup(struct vm *vm, struct opts *o, struct console *con)
{
    struct vdk_error *err = NULL;
    uint8_t *kernel = NULL, *initrd = NULL;
    size_t klen = 0, ilen = 0;
    char *cmdline = NULL;
    int r = -1;

    if (!o->kernel) {
        /* From the image (image_kernel() read it); the buffers move here. */
        kernel = o->img.kernel;
        klen = o->img.kernel_len;
        initrd = o->img.initrd;
        ilen = o->img.initrd_len;
        o->img.kernel = o->img.initrd = NULL;
    } else if (read_file("kernel", o->kernel, KERNEL_FILE_MAX, &kernel,
                         &klen) < 0) {
        goto out;
    }
    if (o->initrd && read_file("initrd", o->initrd, o->mem, &initrd, &ilen) < 0)
        goto out;
    for (int i = 0; i < o->ndisks; i++) {
        struct disk_opt *d = &o->disk[i];
        /* snapshot=on: the image is opened read-only under an overlay in
           an unlinked temporary file that takes the guest's writes. */
        unsigned flags = d->read_only ? 0
                         : d->snapshot ? VDK_O_RDWR | VDK_O_SNAPSHOT
                         : VDK_O_RDWR | VDK_O_DISCARD;
        struct vdk_opts *io = NULL;
        if (d->image_opts && (!(io = vdk_opts_new()) ||
                              vdk_opts_parse(io, d->image_opts, NULL, &err) < 0)) {
            vdk_opts_free(io);
            fail("disk '%s': %s", d->file, err ? vdk_error_msg(err) : "out of memory");
            goto out;
        }
        if (vdk_open(&d->node, d->image_opts ? NULL : d->file, d->format, io, flags,
                     &err) < 0) {
            fail("disk '%s': %s", d->file, vdk_error_msg(err));
            goto out;
        }
    }

    if (vm_create(vm, o->mem, o->cpus, &err) < 0) {
        fail("%s", vdk_error_msg(err));
        goto out;
    }

    struct acpi_config ac = { .ncpus = o->cpus, .ndev = o->ndisks,
                              .dev_size = LAYOUT_VIRTIO_SIZE };
    for (int i = 0; i < o->ndisks; i++) {
        ac.dev_base[i] = LAYOUT_VIRTIO_BASE + LAYOUT_VIRTIO_STRIDE * (unsigned)i;
        ac.dev_irq[i] = virtio_irqs[i];
    }
    uint64_t rsdp = 0;
    uint8_t *acpi = guest_ptr(&vm->mem, LAYOUT_ACPI, LAYOUT_ACPI_END - LAYOUT_ACPI);
    if (!acpi || acpi_build(acpi, LAYOUT_ACPI_END - LAYOUT_ACPI, LAYOUT_ACPI,
                            &ac, &rsdp) < 0) {
        fail("cannot build the ACPI tables");
        goto out;
    }

    cmdline = build_cmdline(o);
    struct boot_input in = {
        .kernel = kernel, .kernel_len = klen, .initrd = initrd,
        .initrd_len = ilen, .cmdline = cmdline ? cmdline : "", .rsdp = rsdp,
    };
    if (boot_load_kernel(&vm->mem, &in, &vm->entry, &err) < 0) {
        fail("kernel '%s': %s", o->kernel ? o->kernel : "from the image",
             vdk_error_msg(err));
        goto out;
    }
    if (o->verbose)
        fprintf(stderr, "%s: %s kernel at 0x%" PRIx64 "-0x%" PRIx64
                ", entry 0x%" PRIx64 "\n", prog,
                vm->entry.kind == BOOT_PVH ? "PVH" : "bzImage",
                vm->entry.kernel_start, vm->entry.kernel_end, vm->entry.rip);

    serial_init(&vm->serial, vm_irq(vm, IRQ_COM1), con);
    for (int i = 0; i < o->ndisks; i++) {
        struct disk_opt *d = &o->disk[i];
        if (virtio_blk_start(&d->blk, d->node, d->read_only, d->serial,
                             &vm->mem, ac.dev_base[i],
                             vm_irq(vm, ac.dev_irq[i]), &err) < 0) {
            fail("disk '%s': %s", d->file, vdk_error_msg(err));
            goto out;
        }
        vm->disk[vm->ndisks++] = &d->blk;
    }
    if (vcpu_create_all(vm, &err) < 0) {
        fail("%s", vdk_error_msg(err));
        goto out;
    }
    r = 0;
out:
    vdk_error_free(err);
    free(kernel);
    free(initrd);
    free(cmdline);
    return r;
}

/* Wait for the verdict, feeding terminal input to the UART. */
static void wait_verdict(struct vm *vm, struct console *con, double timeout)
{
    uint8_t pending[256];
    size_t npending = 0;
    /* Terminal or pipe alike: what arrives on stdin is typed into the
       guest's UART (scripted input works); EOF stops reading. */
    bool stdin_open = true;
    int64_t deadline = timeout > 0 ? (int64_t)(timeout * 1e9) : -1;

    while (vm_get_verdict(vm, NULL, 0) == VERDICT_NONE) {
        if (got_signal) {
            vm_set_verdict(vm, VERDICT_INTERRUPTED, "interrupted by signal %d",
                           (int)got_signal);
            break;
        }
        int wait_ms = -1;
        if (deadline >= 0) {
            int64_t left = deadline - console_elapsed_ns(con);
            if (left <= 0) {
                vm_set_verdict(vm, VERDICT_TIMEOUT,
                               "timed out after %g seconds", timeout);
                break;
            }
            wait_ms = (int)(left / 1000000) + 1;
        }
        if (npending && (wait_ms < 0 || wait_ms > 10))
            wait_ms = 10;
        struct pollfd pf[2] = {
            { .fd = vm->wake_fd, .events = POLLIN },
            { .fd = STDIN_FILENO, .events = POLLIN },
        };
        int nfds = stdin_open && npending < sizeof(pending) ? 2 : 1;
        int n = poll(pf, (nfds_t)nfds, wait_ms);
        if (n < 0 && errno != EINTR)
            break;
        if (nfds == 2 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t k = read(STDIN_FILENO, pending + npending,
                             sizeof(pending) - npending);
            if (k <= 0)
                stdin_open = false;
            else
                npending += (size_t)k;
        }
        if (npending) {
            size_t k = serial_push_input(&vm->serial, pending, npending);
            memmove(pending, pending + k, npending - k);
            npending -= k;
        }
    }
}

static int verdict_exit(enum vm_verdict v)
{
    switch (v) {
    case VERDICT_POWEROFF:
    case VERDICT_MATCHED: return EXIT_PASS;
    case VERDICT_TIMEOUT: return EXIT_TIMEOUT;
    case VERDICT_PANIC: return EXIT_PANIC;
    case VERDICT_KVM_ERROR: return EXIT_KVM;
    case VERDICT_RESET: return EXIT_RESET;
    case VERDICT_NO_MATCH: return EXIT_NO_MATCH;
    case VERDICT_INTERRUPTED: return EXIT_INTERRUPTED;
    default: return EXIT_SETUP;
    }
}

int main(int argc, char **argv)
{
    static struct opts o;
    static struct vm vm;
    static struct console con;
    struct vdk_error *err = NULL;
    int log_fd = -1;
    int code = EXIT_SETUP;

    vm_init(&vm);
    if (parse_args(&o, argc, argv) < 0)
        return EXIT_SETUP;
    if (!o.kernel) {
        int r = image_kernel(&o);
        if (r != 0)
            return r > 0 ? EXIT_PASS : EXIT_SETUP;
    }
    if (o.console_log) {
        log_fd = open(o.console_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                      0644);
        if (log_fd < 0) {
            fail("cannot create console log '%s': %s", o.console_log,
                 strerror(errno));
            return EXIT_SETUP;
        }
    }
    if (console_init(&con, &vm, o.expect, o.quiet, log_fd, &err) < 0) {
        fail("%s", vdk_error_msg(err));
        vdk_error_free(err);
        return EXIT_SETUP;
    }
    vm.verbose = o.verbose;
    install_signals();
    signal_vm = &vm;

    if (setup(&vm, &o, &con) == 0) {
        console_term_raw();
        if (vcpu_start_all(&vm, &err) < 0) {
            fail("%s", vdk_error_msg(err));
            vdk_error_free(err);
            vm_set_verdict(&vm, VERDICT_KVM_ERROR, "could not start vCPUs");
        }
        wait_verdict(&vm, &con, o.timeout);
        int64_t verdict_ns = console_elapsed_ns(&con);
        vcpu_stop_all(&vm);
        console_term_restore();

        char msg[256];
        enum vm_verdict v = vm_get_verdict(&vm, msg, sizeof(msg));
        if (v == VERDICT_POWEROFF && con.have_expect && !con.matched) {
            v = VERDICT_NO_MATCH;
            snprintf(msg, sizeof(msg),
                     "guest powered off before --expect matched");
        }
        code = verdict_exit(v);
        if (o.verbose) {
            if (con.first_output_ns >= 0)
                fprintf(stderr, "%s: first console output after %.1f ms\n",
                        prog, con.first_output_ns / 1e6);
            else
                fprintf(stderr, "%s: no console output\n", prog);
            fprintf(stderr, "%s: verdict after %.1f ms\n", prog,
                    verdict_ns / 1e6);
        }
        fprintf(stderr, "%s: %s: %s (exit %d)\n", prog,
                code == EXIT_PASS ? "PASS" : "FAIL", msg, code);
    }

    signal_vm = NULL;
    for (int i = 0; i < o.ndisks; i++) {
        struct disk_opt *d = &o.disk[i];
        if (i < vm.ndisks)
            virtio_blk_stop(&d->blk);
        if (d->node && vdk_close(d->node) < 0 && code == EXIT_PASS) {
            fail("disk '%s': flushing on close failed", d->file);
            code = EXIT_SETUP;
        }
        free(d->file);
        free(d->format);
        free(d->image_opts);
        free(d->serial);
    }
    serial_destroy(&vm.serial);
    vm_destroy(&vm);
    console_destroy(&con);
    if (log_fd >= 0)
        close(log_fd);
    return code;
}
