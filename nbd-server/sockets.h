/* SPDX-License-Identifier: MIT */
/* vdk-nbd listening sockets and the accept loop (sockets.c). */
#ifndef VDK_NBD_SOCKETS_H
#define VDK_NBD_SOCKETS_H

#include "nbd-server/server.h"

#define NBD_MAX_LISTEN 16

struct nbd_listeners {
    int fd[NBD_MAX_LISTEN];
    size_t n;
    char *unix_path;         /* removed when the server exits */
};

/* Bind and listen; each appends to l. */
int nbd_listen_unix(struct nbd_listeners *l, const char *path, struct vdk_error **errp);
int nbd_listen_tcp(struct nbd_listeners *l, const char *addr, const char *port,
                   struct vdk_error **errp);
/* systemd socket activation: take LISTEN_FDS when LISTEN_PID is us.
   Returns the number of sockets taken (0 if not activated). */
int nbd_listen_systemd(struct nbd_listeners *l, struct vdk_error **errp);
void nbd_listeners_close(struct nbd_listeners *l);

/* Install SIGTERM/SIGINT handlers that stop nbd_serve(); ignore SIGPIPE. */
int nbd_signals_init(struct vdk_error **errp);
/*
 * While the exports open (key derivation from an image header can take
 * long), SIGTERM/SIGINT end the process at once: the handler removes
 * unix_path (may be NULL), says why on stderr and exits 1.  on=false
 * restores the serving behaviour.  Call from the main thread.
 */
void nbd_signals_opening(bool on, const char *unix_path);

/*
 * Accept and serve clients until SIGTERM/SIGINT, or (unless persistent)
 * until the last client of at least one has gone.  max_conns 0: no limit.
 * On return every connection has finished its requests and closed.
 */
int nbd_serve(struct nbd_server *srv, struct nbd_listeners *l, unsigned max_conns,
              bool persistent);

#endif
