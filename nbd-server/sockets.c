/* SPDX-License-Identifier: MIT */
/*
 * Sockets: unix and TCP listeners, systemd socket activation, the accept
 * loop, one thread per connection, the connection cap and orderly
 * shutdown on SIGTERM/SIGINT (stop accepting, stop reading new requests,
 * let every request in flight finish and reply, then return so the caller
 * flushes and closes the images).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "nbd-server/sockets.h"

/* A client that has not finished negotiating after this long is dropped. */
#define HANDSHAKE_TIMEOUT_S 60
/* On SIGTERM, requests in flight get this long to finish. */
#define SHUTDOWN_GRACE_S 30

static int wake_pipe[2] = { -1, -1 };
static volatile sig_atomic_t got_signal;
/* The signal mask outside ppoll(): every thread inherits SIGTERM and
   SIGINT blocked, so only the accept loop ever sees them. */
static sigset_t run_mask;

static volatile sig_atomic_t opening;
static const char *opening_path;

static void on_signal(int sig)
{
    if (opening) {
        static const char msg[] = "vdk-nbd: interrupted while opening the exports\n";
        if (opening_path)
            unlink(opening_path);
        ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)w;
        _exit(1);
    }
    got_signal = sig;
    int e = errno;
    char b = 's';
    ssize_t w = write(wake_pipe[1], &b, 1);
    (void)w;
    errno = e;
}

int nbd_signals_init(struct vdk_error **errp)
{
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return vdk_error_setf_errno(errp, errno, "cannot create a pipe");
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &run_mask);
    sigdelset(&run_mask, SIGTERM);
    sigdelset(&run_mask, SIGINT);
    return 0;
}

void nbd_signals_opening(bool on, const char *unix_path)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (on) {
        opening_path = unix_path;
        opening = 1;
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    } else {
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        opening = 0;
    }
}

static int add_fd(struct nbd_listeners *l, int fd, struct vdk_error **errp)
{
    if (l->n >= NBD_MAX_LISTEN) {
        close(fd);
        return vdk_error_setf(errp, EMFILE, "too many listening sockets");
    }
    l->fd[l->n++] = fd;
    return 0;
}

int nbd_listen_unix(struct nbd_listeners *l, const char *path, struct vdk_error **errp)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return vdk_error_setf(errp, ENAMETOOLONG, "socket path '%s' is too long", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "cannot create a unix socket");
    unlink(path); /* a stale socket of an earlier run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return vdk_error_setf_errno(errp, e, "cannot listen on '%s'", path);
    }
    free(l->unix_path);
    l->unix_path = strdup(path);
    return add_fd(l, fd, errp);
}

int nbd_listen_tcp(struct nbd_listeners *l, const char *addr, const char *port,
                   struct vdk_error **errp)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_ADDRCONFIG };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(addr, port, &hints, &res);
    if (g != 0)
        return vdk_error_setf(errp, EINVAL, "cannot resolve '%s' port '%s': %s",
                              addr ? addr : "*", port, gai_strerror(g));
    int r = 0, bound = 0, last_err = 0;
    for (struct addrinfo *a = res; a && r == 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (a->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 128) < 0) {
            last_err = errno;
            close(fd);
            continue;
        }
        r = add_fd(l, fd, errp);
        bound++;
    }
    freeaddrinfo(res);
    if (r == 0 && !bound)
        r = vdk_error_setf_errno(errp, last_err, "cannot listen on '%s' port %s",
                                 addr ? addr : "*", port);
    return r;
}

int nbd_listen_systemd(struct nbd_listeners *l, struct vdk_error **errp)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds)
        return 0;
    char *end;
    long p = strtol(pid, &end, 10);
    if (*end || p != (long)getpid())
        return 0;
    long n = strtol(fds, &end, 10);
    if (*end || n < 1 || n > NBD_MAX_LISTEN)
        return vdk_error_setf(errp, EINVAL, "LISTEN_FDS='%s' is not 1..%d", fds,
                              NBD_MAX_LISTEN);
    for (long i = 0; i < n; i++) {
        int fd = 3 + (int)i; /* SD_LISTEN_FDS_START */
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
            return vdk_error_setf(errp, EBADF, "LISTEN_FDS: fd %d is not a socket", fd);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        int r = add_fd(l, fd, errp);
        if (r < 0)
            return r;
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return (int)n;
}

void nbd_listeners_close(struct nbd_listeners *l)
{
    for (size_t i = 0; i < l->n; i++)
        close(l->fd[i]);
    l->n = 0;
    if (l->unix_path)
        unlink(l->unix_path);
    free(l->unix_path);
    l->unix_path = NULL;
}

/* ---- connections ---- */

struct slot {
    struct nbd_conn conn;
    struct slot *next, **pprev;
};

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_gone = PTHREAD_COND_INITIALIZER;
static struct slot *conns;
static unsigned n_conns;
/* A connection reached transmission.  Without -t the server ends once
   such a client has left and nobody else is connected; like qemu-nbd, a
   connection that ends during the handshake (a port probe, a health
   check, `nbdinfo --list`) does not count. */
static atomic_bool served;

static void describe_peer(int fd, char *out, size_t len)
{
    static atomic_uint seq;
    unsigned id = atomic_fetch_add(&seq, 1) + 1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
        snprintf(out, len, "client #%u", id);
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
        snprintf(out, len, "#%u %s:%u", id, host, ntohs(s->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
        snprintf(out, len, "#%u [%s]:%u", id, host, ntohs(s->sin6_port));
    } else {
        snprintf(out, len, "#%u unix", id);
    }
}

static void set_rcv_timeout(int fd, int seconds)
{
    struct timeval tv = { .tv_sec = seconds };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void *conn_main(void *arg)
{
    struct slot *s = arg;
    struct nbd_conn *c = &s->conn;
    int fd = c->io.fd;
    set_rcv_timeout(fd, HANDSHAKE_TIMEOUT_S);
    c->io.timeout_ms = HANDSHAKE_TIMEOUT_S * 1000; /* the same once TLS is up */
    int r = nbd_handshake(c);
    if (r == 0) {
        set_rcv_timeout(fd, 0);
        c->io.timeout_ms = -1;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        atomic_fetch_add(&c->exp->clients, 1);
        atomic_store(&served, true);
        const char *tv = nbd_io_tls_version(&c->io);
        nbd_log(NBD_LOG_INFO, "%s: export '%s'%s%s%s", c->peer, c->exp->name,
                tv ? ", " : "", tv ? tv : "", c->structured ? ", structured replies" : "");
        r = nbd_transmission(c);
        atomic_fetch_sub(&c->exp->clients, 1);
        nbd_log(NBD_LOG_INFO, "%s: closed%s%s", c->peer, r < 0 ? ": " : "",
                r < 0 ? strerror(-r) : "");
    } else if (r != -ECONNABORTED && r != -ECONNRESET) {
        nbd_log(NBD_LOG_INFO, "%s: handshake ended: %s", c->peer, strerror(-r));
    }
    /* Leave the list before closing, so a shutdown never hits a reused fd. */
    pthread_mutex_lock(&conns_lock);
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    pthread_mutex_unlock(&conns_lock);
    nbd_io_close(&c->io);
    nbd_conn_destroy(c);
    free(s);
    nbd_tls_thread_end();
    pthread_mutex_lock(&conns_lock);
    n_conns--;
    pthread_cond_broadcast(&conns_gone);
    pthread_mutex_unlock(&conns_lock);
    char b = 'c';
    ssize_t w = write(wake_pipe[1], &b, 1); /* let the accept loop recount */
    (void)w;
    return NULL;
}

/* Unix sockets: a 2 MiB send buffer lets a whole large read reply go out
   in one writev without waking the client for every 200 KiB (qemu measured
   it worth several times on big reads); the receive side likewise takes a
   client's write payloads in fewer wake-ups.  The kernel caps both at
   net.core.wmem_max / rmem_max. */
#define UNIX_SOCK_BUF (2 << 20)

static void size_buffers(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 || ss.ss_family != AF_UNIX)
        return;
    int sz = UNIX_SOCK_BUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

static void accept_one(struct nbd_server *srv, int lfd, unsigned max_conns)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    size_buffers(fd);
    char peer[128];
    describe_peer(fd, peer, sizeof(peer));
    pthread_mutex_lock(&conns_lock);
    bool full = max_conns && n_conns >= max_conns;
    pthread_mutex_unlock(&conns_lock);
    if (full) {
        nbd_log(NBD_LOG_WARNING, "%s: refused, %u connections already", peer, max_conns);
        close(fd);
        return;
    }
    struct slot *s = calloc(1, sizeof(*s));
    if (!s) {
        close(fd);
        return;
    }
    nbd_conn_init(&s->conn, srv);
    nbd_io_init_fd(&s->conn.io, fd);
    snprintf(s->conn.peer, sizeof(s->conn.peer), "%s", peer);
    pthread_mutex_lock(&conns_lock);
    s->next = conns;
    s->pprev = &conns;
    if (conns)
        conns->pprev = &s->next;
    conns = s;
    n_conns++;
    pthread_mutex_unlock(&conns_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 1u << 20);
    if (pthread_create(&t, &attr, conn_main, s) != 0) {
        nbd_log(NBD_LOG_ERR, "%s: cannot start a thread", peer);
        pthread_mutex_lock(&conns_lock);
        *s->pprev = s->next;
        if (s->next)
            s->next->pprev = s->pprev;
        n_conns--;
        pthread_mutex_unlock(&conns_lock);
        nbd_io_close(&s->conn.io);
        nbd_conn_destroy(&s->conn);
        free(s);
    }
    pthread_attr_destroy(&attr);
}

int nbd_serve(struct nbd_server *srv, struct nbd_listeners *l, unsigned max_conns,
              bool persistent)
{
    struct pollfd pf[NBD_MAX_LISTEN + 1];
    while (!got_signal) {
        pf[0] = (struct pollfd){ .fd = wake_pipe[0], .events = POLLIN };
        for (size_t i = 0; i < l->n; i++)
            pf[i + 1] = (struct pollfd){ .fd = l->fd[i], .events = POLLIN };
        int r = ppoll(pf, l->n + 1, NULL, &run_mask);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0 && (pf[0].revents & POLLIN)) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
                ;
        }
        if (got_signal)
            break;
        for (size_t i = 0; r > 0 && i < l->n; i++) {
            if (pf[i + 1].revents & POLLIN)
                accept_one(srv, l->fd[i], max_conns);
        }
        pthread_mutex_lock(&conns_lock);
        bool idle = n_conns == 0;
        pthread_mutex_unlock(&conns_lock);
        if (!persistent && atomic_load(&served) && idle)
            break;
    }
    if (got_signal)
        nbd_log(NBD_LOG_INFO, "signal %d: finishing requests in flight", (int)got_signal);
    /* Stop: no new connections, no new requests; in-flight ones finish. */
    atomic_store(&srv->stopping, true);
    for (size_t i = 0; i < l->n; i++)
        close(l->fd[i]);
    l->n = 0;
    pthread_mutex_lock(&conns_lock);
    for (struct slot *s = conns; s; s = s->next)
        nbd_io_shutdown_read(&s->conn.io);
    /* A client that stopped reading its replies could hold a worker in
       send() forever: after a grace period, cut every connection. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_GRACE_S;
    while (n_conns) {
        if (pthread_cond_timedwait(&conns_gone, &conns_lock, &until) == ETIMEDOUT) {
            nbd_log(NBD_LOG_WARNING, "%u connection(s) still busy after %d s, "
                    "closing them", n_conns, SHUTDOWN_GRACE_S);
            for (struct slot *s = conns; s; s = s->next)
                nbd_io_abort(&s->conn.io);
            until.tv_sec += 3600;
        }
    }
    pthread_mutex_unlock(&conns_lock);
    return 0;
}
