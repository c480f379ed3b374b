/* SPDX-License-Identifier: MIT */
/*
 * vdk-nbd: export disk images over NBD.  The command line follows
 * qemu-nbd's where the two overlap (-k -b -p -x -D -f -r -s -t -e --fork
 * --pid-file --object --image-opts --cache --discard -A) and adds several
 * exports per daemon (--export), TLS through OpenSSL and systemd socket
 * activation.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vdk/secret.h"
#include "nbd-server/sockets.h"

#define PROG "vdk-nbd"
/* Worker threads per connection: enough to keep every CPU busy and some
   requests waiting on the disk, no more (each extra thread on cached data
   costs a context switch per request). */
#define WORKERS_PER_CPU 4
#define MIN_WORKERS 4
#define MAX_DEFAULT_WORKERS 16
#define DEFAULT_INFLIGHT (64ull << 20)
#define MAX_EXPORTS 256

enum {
    OPT_FORK = 256, OPT_PID_FILE, OPT_OBJECT, OPT_IMAGE_OPTS, OPT_CACHE, OPT_DISCARD,
    OPT_EXPORT, OPT_TLS, OPT_TLS_CERTS, OPT_TLS_PSK, OPT_THREADS, OPT_MAX_INFLIGHT,
};

static const struct option long_opts[] = {
    { "socket", required_argument, NULL, 'k' },
    { "bind", required_argument, NULL, 'b' },
    { "port", required_argument, NULL, 'p' },
    { "export-name", required_argument, NULL, 'x' },
    { "description", required_argument, NULL, 'D' },
    { "format", required_argument, NULL, 'f' },
    { "read-only", no_argument, NULL, 'r' },
    { "snapshot", no_argument, NULL, 's' },
    { "persistent", no_argument, NULL, 't' },
    { "shared", required_argument, NULL, 'e' },
    { "allocation-depth", no_argument, NULL, 'A' },
    { "bitmap", required_argument, NULL, 'B' },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { "fork", no_argument, NULL, OPT_FORK },
    { "pid-file", required_argument, NULL, OPT_PID_FILE },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "image-opts", no_argument, NULL, OPT_IMAGE_OPTS },
    { "cache", required_argument, NULL, OPT_CACHE },
    { "discard", required_argument, NULL, OPT_DISCARD },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "tls", required_argument, NULL, OPT_TLS },
    { "tls-certificates", required_argument, NULL, OPT_TLS_CERTS },
    { "tls-psk", required_argument, NULL, OPT_TLS_PSK },
    { "threads", required_argument, NULL, OPT_THREADS },
    { "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
    fprintf(out,
"Usage: " PROG " [OPTIONS] [FILE]\n"
"Export disk images over the NBD protocol.\n"
"\n"
"  -k, --socket=PATH         listen on a unix socket\n"
"  -b, --bind=ADDR           TCP address to listen on (default: all)\n"
"  -p, --port=PORT           TCP port (default 10809)\n"
"  -x, --export-name=NAME    name of the FILE export (default \"\")\n"
"  -D, --description=TEXT    description of the FILE export\n"
"  -f, --format=FMT          image format of FILE (default: probe)\n"
"      --image-opts          FILE is an option string (driver=...,file.filename=...)\n"
"  -r, --read-only           export read-only\n"
"  -s, --snapshot            writes go to a throwaway overlay, not FILE\n"
"      --export=SPEC         name=N,file=PATH[,format=F][,readonly=on]\n"
"                            [,snapshot=on][,description=D][,bitmap=B];\n"
"                            repeatable\n"
"  -t, --persistent          keep serving after the last client leaves\n"
"  -e, --shared=N            at most N clients at once (default: no limit)\n"
"  -A, --allocation-depth    offer the qemu:allocation-depth context\n"
"  -B, --bitmap=NAME         offer the qemu:dirty-bitmap:NAME context of FILE's\n"
"                            persistent bitmap NAME; repeatable (in --export:\n"
"                            bitmap=NAME, repeatable)\n"
"      --cache=MODE          writeback (default), writethrough, none,\n"
"                            directsync, unsafe\n"
"      --discard=MODE        ignore (default) or unmap\n"
"      --object=DEF          secret,id=ID,file=PATH (for encrypted images)\n"
"      --tls=MODE            off, on (allow TLS), require\n"
"      --tls-certificates=DIR  ca-cert.pem, server-cert.pem, server-key.pem\n"
"      --tls-psk=FILE        username:hexkey lines\n"
"      --threads=N           worker threads per connection (default: 4 per CPU,\n"
"                            4 to 16)\n"
"      --max-inflight=SIZE   buffered request bytes per connection (default 64M)\n"
"      --fork                run in the background once listening\n"
"      --pid-file=PATH       write the server's pid\n"
"  -v, --verbose             log every refused option\n"
"  -h, --help                this help\n"
"  -V, --version             version\n");
}

static unsigned default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    long w = (n > 0 ? n : 1) * WORKERS_PER_CPU;
    return (unsigned)(w < MIN_WORKERS ? MIN_WORKERS : w > MAX_DEFAULT_WORKERS ? MAX_DEFAULT_WORKERS : w);
}

/* "vdk-nbd: <msg>" on stderr; returns 1, the exit code (img_error()'s
   pattern in vdk-img). */
static int nbd_error(const char *fmt, ...) VDK_PRINTF(1, 2);
static int nbd_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

struct cmdline {
    const char *socket, *bind, *port, *name, *desc, *format, *pid_file;
    const char *tls_certs, *tls_psk;
    int tls; /* -1: not given */
    bool readonly, snapshot, persistent, image_opts, do_fork, discard, depth;
    unsigned shared, threads;
    uint64_t max_inflight;
    enum nbd_cache_mode cache;
    int verbose;
    const char *bitmaps[NBD_MAX_BITMAPS]; /* -B */
    size_t n_bitmaps;
};

static int parse_mode(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int add_export(struct nbd_server *srv, struct nbd_export *e)
{
    if (srv->n_exports >= MAX_EXPORTS || nbd_export_find(srv, e->name)) {
        fprintf(stderr, PROG ": %s export name '%s'\n",
                srv->n_exports >= MAX_EXPORTS ? "too many exports at" : "duplicate",
                e->name);
        nbd_export_free(e);
        return -1;
    }
    struct nbd_export **ne = realloc(srv->exports, (srv->n_exports + 1) * sizeof(*ne));
    if (!ne) {
        nbd_export_free(e);
        return -1;
    }
    srv->exports = ne;
    srv->exports[srv->n_exports++] = e;
    return 0;
}

static int write_pid_file(const char *path, pid_t pid)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
        fprintf(stderr, PROG ": cannot write pid file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * --fork: fork before anything opens (librados, like any library with
 * threads, does not survive a fork, so the exports open in the child).
 * The parent waits until the child says it is listening with every
 * export open, then exits 0; it exits 1 when the child fails first (the
 * child's messages still reach the terminal).  Returns the child's end
 * of the pipe.
 */
static int daemon_fork(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, PROG ": pipe: %s\n", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, PROG ": fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        char c = 0;
        ssize_t n;
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1 && c == 'R')
            _exit(0);
        int st;
        waitpid(pid, &st, 0);
        _exit(1);
    }
    close(p[0]);
    setsid();
    return p[1];
}

/* The child is serving: write the pid file, tell the parent, detach. */
static int daemonize(int ready_fd, const char *pid_file)
{
    if (pid_file && write_pid_file(pid_file, getpid()) < 0)
        return -1;
    if (write(ready_fd, "R", 1) != 1)
        return -1;
    close(ready_fd);
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct cmdline *cl, struct nbd_server *srv)
{
    static const char *const cache_names[] = { "writeback", "none", "writethrough",
                                               "directsync", "unsafe" };
    static const char *const tls_names[] = { "off", "on", "require" };
    struct vdk_error *err = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "k:b:p:x:D:f:rste:AB:vhV", long_opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'k': cl->socket = optarg; break;
        case 'b': cl->bind = optarg; break;
        case 'p':
            if (vdk_parse_uint(optarg, &v) < 0 || v < 1 || v > 65535)
                return nbd_error("invalid port '%s'", optarg);
            cl->port = optarg;
            break;
        case 'x': cl->name = optarg; break;
        case 'D': cl->desc = optarg; break;
        case 'f': cl->format = optarg; break;
        case 'r': cl->readonly = true; break;
        case 's': cl->snapshot = true; break;
        case 't': cl->persistent = true; break;
        case 'e':
            if (vdk_parse_uint(optarg, &v) < 0 || v > 65536)
                return nbd_error("invalid connection count '%s'", optarg);
            cl->shared = (unsigned)v;
            break;
        case 'A': cl->depth = true; break;
        case 'B':
            if (!*optarg || strlen(optarg) > NBD_MAX_STRING)
                return nbd_error("-B needs a bitmap name of 1 to %d bytes", NBD_MAX_STRING);
            if (cl->n_bitmaps == NBD_MAX_BITMAPS)
                return nbd_error("too many -B bitmaps (at most %d)", NBD_MAX_BITMAPS);
            cl->bitmaps[cl->n_bitmaps++] = optarg;
            break;
        case 'v': cl->verbose++; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf(PROG " %s\n", vdk_version()); exit(0);
        case OPT_FORK: cl->do_fork = true; break;
        case OPT_PID_FILE: cl->pid_file = optarg; break;
        case OPT_OBJECT:
            if (vdk_object_add(optarg, &err) < 0) {
                vdk_error_report(PROG, err);
                return 1;
            }
            break;
        case OPT_IMAGE_OPTS: cl->image_opts = true; break;
        case OPT_CACHE: {
            int m = parse_mode(optarg, cache_names, 5);
            if (m < 0)
                return nbd_error("invalid cache mode '%s'", optarg);
            cl->cache = (enum nbd_cache_mode)m;
            break;
        }
        case OPT_DISCARD:
            if (!strcmp(optarg, "unmap") || !strcmp(optarg, "on"))
                cl->discard = true;
            else if (!strcmp(optarg, "ignore") || !strcmp(optarg, "off"))
                cl->discard = false;
            else
                return nbd_error("invalid discard mode '%s' (ignore or unmap)", optarg);
            break;
        case OPT_EXPORT: {
            struct nbd_export *e = NULL;
            if (nbd_export_parse(optarg, &e, &err) < 0) {
                vdk_error_report(PROG, err);
                return 1;
            }
            if (add_export(srv, e) < 0)
                return 1;
            break;
        }
        case OPT_TLS:
            if ((cl->tls = parse_mode(optarg, tls_names, 3)) < 0)
                return nbd_error("invalid TLS mode '%s' (off, on or require)", optarg);
            break;
        case OPT_TLS_CERTS: cl->tls_certs = optarg; break;
        case OPT_TLS_PSK: cl->tls_psk = optarg; break;
        case OPT_THREADS:
            if (vdk_parse_uint(optarg, &v) < 0 || v < 1 || v > 1024)
                return nbd_error("invalid thread count '%s' (1..1024)", optarg);
            cl->threads = (unsigned)v;
            break;
        case OPT_MAX_INFLIGHT:
            if (vdk_parse_size(optarg, &v) < 0 || v < (1u << 20) || v > (1ull << 34))
                return nbd_error("invalid in-flight size '%s' (1M..16G)", optarg);
            cl->max_inflight = v;
            break;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc - 1)
        return nbd_error("too many arguments (one FILE, or --export)");
    if (optind == argc - 1) {
        struct nbd_export *e = nbd_export_new(cl->name ? cl->name : "", argv[optind],
                                              cl->format);
        if (!e || (cl->desc && !(e->description = strdup(cl->desc))))
            return nbd_error("out of memory");
        e->readonly = cl->readonly;
        e->snapshot = cl->snapshot;
        e->image_opts = cl->image_opts;
        for (size_t i = 0; i < cl->n_bitmaps; i++)
            if (nbd_export_add_bitmap(e, cl->bitmaps[i]) < 0) {
                nbd_export_free(e);
                return nbd_error("out of memory");
            }
        if (cl->image_opts && cl->format) {
            nbd_export_free(e);
            return nbd_error("--image-opts and -f do not go together (use driver=)");
        }
        if (add_export(srv, e) < 0)
            return 1;
    } else if (cl->name || cl->desc || cl->format || cl->image_opts || cl->n_bitmaps) {
        return nbd_error("-x, -D, -f, -B and --image-opts describe FILE, which is missing");
    }
    if (!srv->n_exports)
        return nbd_error("nothing to export: give FILE or --export (see --help)");
    if (cl->readonly)
        for (size_t i = 0; i < srv->n_exports; i++)
            srv->exports[i]->readonly = true;
    if (cl->socket && (cl->bind || cl->port))
        return nbd_error("-k and -b/-p are exclusive");
    return 0;
}

int main(int argc, char **argv)
{
    struct cmdline cl = { .tls = -1, .cache = NBD_CACHE_WRITEBACK };
    struct nbd_server srv = { .workers = default_workers(), .max_inflight = DEFAULT_INFLIGHT };
    struct nbd_listeners l = { .n = 0 };
    struct vdk_error *err = NULL;
    /* Request buffers (up to 32 MiB) come and go on every request; keep
       them on the heap instead of a fresh mmap each time, whose page
       faults and TLB shootdowns cost more than the I/O on cached data. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    int rc = parse_args(argc, argv, &cl, &srv);
    if (rc)
        goto out;
    rc = 1;
    if (cl.threads)
        srv.workers = cl.threads;
    if (cl.max_inflight)
        srv.max_inflight = cl.max_inflight;
    srv.allocation_depth = cl.depth;
    atomic_init(&srv.stopping, false);
    nbd_log_init(false, cl.verbose ? NBD_LOG_DEBUG : NBD_LOG_INFO);

    bool creds = cl.tls_certs || cl.tls_psk;
    if (cl.tls < 0)
        cl.tls = creds ? NBD_TLS_REQUIRE : NBD_TLS_OFF;
    if (cl.tls != NBD_TLS_OFF && !creds) {
        nbd_error("--tls=%s needs --tls-certificates or --tls-psk", cl.tls == 1 ? "on" : "require");
        goto out;
    }
    if (cl.tls_certs && cl.tls_psk) {
        nbd_error("--tls-certificates and --tls-psk are exclusive");
        goto out;
    }
    srv.tls_mode = (enum nbd_tls_mode)cl.tls;
    if (srv.tls_mode != NBD_TLS_OFF &&
        nbd_tls_new(&srv.tls, cl.tls_certs, cl.tls_psk, &err) < 0) {
        vdk_error_report(PROG, err);
        goto out;
    }

    int ready_fd = -1;
    if (cl.do_fork && (ready_fd = daemon_fork()) < 0)
        goto out;
    if (nbd_signals_init(&err) < 0) {
        vdk_error_report(PROG, err);
        goto out;
    }
    int act = nbd_listen_systemd(&l, &err);
    if (act < 0) {
        vdk_error_report(PROG, err);
        goto out;
    }
    if (act == 0) {
        int r = cl.socket ? nbd_listen_unix(&l, cl.socket, &err)
                          : nbd_listen_tcp(&l, cl.bind, cl.port ? cl.port : "10809", &err);
        if (r < 0) {
            vdk_error_report(PROG, err);
            goto out;
        }
    }
    nbd_signals_opening(true, l.unix_path);
    for (size_t i = 0; i < srv.n_exports; i++) {
        if (nbd_export_open(srv.exports[i], cl.cache, srv.tls_mode != NBD_TLS_OFF, cl.discard,
                            &err) < 0) {
            nbd_signals_opening(false, NULL);
            vdk_error_report(PROG, err);
            goto out;
        }
    }
    nbd_signals_opening(false, NULL);
    /* Keys are derived: no passphrase stays in memory while we serve
       (exports never reopen; a later lookup would fail "no secret"). */
    vdk_objects_clear();

    if (cl.do_fork) {
        if (daemonize(ready_fd, cl.pid_file) < 0)
            goto out;
        nbd_log_init(true, cl.verbose ? NBD_LOG_DEBUG : NBD_LOG_INFO);
    } else if (cl.pid_file && write_pid_file(cl.pid_file, getpid()) < 0) {
        goto out;
    }

    nbd_serve(&srv, &l, cl.shared, cl.persistent);
    rc = 0;
out:
    nbd_listeners_close(&l);
    for (size_t i = 0; i < srv.n_exports; i++)
        if (nbd_export_free(srv.exports[i]) < 0)
            rc = 1;
    free(srv.exports);
    nbd_tls_free(srv.tls);
    vdk_objects_clear();
    if (cl.pid_file && rc == 0)
        unlink(cl.pid_file);
    return rc;
}
