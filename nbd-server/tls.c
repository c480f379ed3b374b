/* SPDX-License-Identifier: MIT */
/*
 * TLS for vdk-nbd, through OpenSSL: the server context and its
 * credentials, and the handshake that turns a plain connection into a TLS
 * one (nbd_io_starttls).  Moving bytes over the connection, TLS or not,
 * is transport.c's.
 *
 * X.509 (server-cert.pem + server-key.pem, optional ca-cert.pem in
 * one directory, the layout qemu-nbd and nbdkit use) or pre-shared keys
 * from a "username:hexkey" file (gnutls psktool's format, which libnbd
 * reads).  PSKs work with TLS 1.3 (an external PSK session with SHA-256,
 * the hash gnutls uses) and with TLS 1.2 PSK cipher suites.
 *
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "nbd-server/server.h"

#define MAX_PSK_ENTRIES 1024
#define MAX_PSK_BYTES 64
#define MAX_PSK_IDENTITY 255

struct psk_entry {
    char *identity;
    unsigned char key[MAX_PSK_BYTES];
    size_t key_len;
};

struct nbd_tls {
    SSL_CTX *ctx;
    struct psk_entry *psk;
    size_t n_psk;
};

static int psk_ex_index = -1;

/* ---- PSK file ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int load_psk_file(struct nbd_tls *t, const char *path, struct vdk_error **errp)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vdk_error_setf_errno(errp, errno, "cannot open PSK file '%s'", path);
    char line[1024];
    int lineno = 0, r = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t l = strcspn(line, "\r\n");
        if (line[l] == '\0' && !feof(f)) {
            r = vdk_error_setf(errp, EINVAL, "%s:%d: line too long", path, lineno);
            break;
        }
        line[l] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        size_t idlen = colon ? (size_t)(colon - line) : 0;
        size_t hexlen = colon ? strlen(colon + 1) : 0;
        if (!colon || idlen == 0 || idlen > MAX_PSK_IDENTITY || hexlen == 0 ||
            hexlen % 2 || hexlen / 2 > MAX_PSK_BYTES) {
            r = vdk_error_setf(errp, EINVAL, "%s:%d: expected 'username:hexkey' "
                               "(key of 1..%d bytes)", path, lineno, MAX_PSK_BYTES);
            break;
        }
        if (t->n_psk >= MAX_PSK_ENTRIES) {
            r = vdk_error_setf(errp, E2BIG, "%s: more than %d keys", path, MAX_PSK_ENTRIES);
            break;
        }
        struct psk_entry *ne = realloc(t->psk, (t->n_psk + 1) * sizeof(*ne));
        if (!ne) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        }
        t->psk = ne;
        struct psk_entry *e = &t->psk[t->n_psk];
        memset(e, 0, sizeof(*e));
        const char *hex = colon + 1;
        for (size_t i = 0; i < hexlen / 2; i++) {
            int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                OPENSSL_cleanse(e->key, sizeof(e->key));
                r = vdk_error_setf(errp, EINVAL, "%s:%d: key is not hexadecimal", path,
                                   lineno);
                goto out;
            }
            e->key[i] = (unsigned char)(hi << 4 | lo);
        }
        e->key_len = hexlen / 2;
        *colon = '\0';
        if (!(e->identity = strdup(line))) {
            OPENSSL_cleanse(e->key, sizeof(e->key));
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            break;
        }
        t->n_psk++;
    }
out:
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    if (r == 0 && t->n_psk == 0)
        r = vdk_error_setf(errp, EINVAL, "PSK file '%s' holds no keys", path);
    return r;
}

static const struct psk_entry *psk_lookup(SSL *ssl, const unsigned char *id, size_t len)
{
    struct nbd_tls *t = SSL_get_ex_data(ssl, psk_ex_index);
    if (!t)
        return NULL;
    for (size_t i = 0; i < t->n_psk; i++)
        if (strlen(t->psk[i].identity) == len && memcmp(t->psk[i].identity, id, len) == 0)
            return &t->psk[i];
    return NULL;
}

/* TLS 1.3: the client's identity names an external PSK; hand OpenSSL a
   session carrying that key with a SHA-256 suite, as gnutls expects. */
static int psk_find_session(SSL *ssl, const unsigned char *id, size_t id_len,
                            SSL_SESSION **sess)
{
    *sess = NULL;
    const struct psk_entry *e = psk_lookup(ssl, id, id_len);
    if (!e)
        return 1; /* unknown identity: no PSK, the handshake then fails */
    const unsigned char suite[2] = { 0x13, 0x01 }; /* TLS_AES_128_GCM_SHA256 */
    const SSL_CIPHER *c = SSL_CIPHER_find(ssl, suite);
    SSL_SESSION *s = c ? SSL_SESSION_new() : NULL;
    if (!s || !SSL_SESSION_set1_master_key(s, e->key, e->key_len) ||
        !SSL_SESSION_set_cipher(s, c) ||
        !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
        SSL_SESSION_free(s);
        return 0;
    }
    *sess = s;
    return 1;
}

/* TLS 1.2 PSK suites. */
static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_len)
{
    if (!identity)
        return 0;
    const struct psk_entry *e = psk_lookup(ssl, (const unsigned char *)identity,
                                           strlen(identity));
    if (!e || e->key_len > max_len)
        return 0;
    memcpy(psk, e->key, e->key_len);
    return (unsigned int)e->key_len;
}

int nbd_tls_new(struct nbd_tls **out, const char *certdir, const char *pskfile,
                struct vdk_error **errp)
{
    *out = NULL;
    struct nbd_tls *t = calloc(1, sizeof(*t));
    if (!t)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (psk_ex_index < 0)
        psk_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    t->ctx = SSL_CTX_new(TLS_server_method());
    int r = 0;
    if (!t->ctx) {
        r = vdk_error_setf(errp, ENOMEM, "cannot create a TLS context");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read ahead: a record header and its body (and the next records a
       pipelining client has sent) in one read() instead of two each. */
    SSL_CTX_set_read_ahead(t->ctx, 1);
    /* No session tickets: every connection authenticates afresh. */
    SSL_CTX_set_num_tickets(t->ctx, 0);
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    if (certdir) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/server-cert.pem", certdir);
        if (SSL_CTX_use_certificate_chain_file(t->ctx, p) != 1) {
            r = vdk_error_setf(errp, EINVAL, "cannot load TLS certificate '%s'", p);
            goto fail;
        }
        snprintf(p, sizeof(p), "%s/server-key.pem", certdir);
        if (SSL_CTX_use_PrivateKey_file(t->ctx, p, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(t->ctx) != 1) {
            r = vdk_error_setf(errp, EINVAL, "cannot load TLS key '%s' (or it does not "
                               "match the certificate)", p);
            goto fail;
        }
        snprintf(p, sizeof(p), "%s/ca-cert.pem", certdir);
        struct stat st;
        if (stat(p, &st) == 0 && SSL_CTX_load_verify_locations(t->ctx, p, NULL) != 1) {
            r = vdk_error_setf(errp, EINVAL, "cannot load TLS CA certificate '%s'", p);
            goto fail;
        }
    }
    if (pskfile) {
        if ((r = load_psk_file(t, pskfile, errp)) < 0)
            goto fail;
        SSL_CTX_set_psk_find_session_callback(t->ctx, psk_find_session);
        SSL_CTX_set_psk_server_callback(t->ctx, psk_server_cb);
        /* TLS 1.2 PSK suites are off by default in OpenSSL 3. */
        SSL_CTX_set_cipher_list(t->ctx, "DEFAULT:ECDHE-PSK:DHE-PSK:PSK");
    }
    ERR_clear_error();
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    nbd_tls_free(t);
    return r;
}

void nbd_tls_free(struct nbd_tls *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_psk; i++) {
        OPENSSL_cleanse(t->psk[i].key, sizeof(t->psk[i].key));
        free(t->psk[i].identity);
    }
    free(t->psk);
    SSL_CTX_free(t->ctx);
    free(t);
}

void nbd_tls_thread_end(void)
{
    OPENSSL_thread_stop();
}

int nbd_io_starttls(struct nbd_io *io, struct nbd_tls *t, const char *peer)
{
    if (io->fd < 0 || !t)
        return -EINVAL;
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return -ENOMEM;
    SSL_set_ex_data(ssl, psk_ex_index, t);
    if (SSL_set_fd(ssl, io->fd) != 1) {
        SSL_free(ssl);
        return -EIO;
    }
    int r = SSL_accept(ssl);
    if (r != 1) {
        unsigned long e = ERR_get_error();
        char buf[256] = "connection closed";
        if (e)
            ERR_error_string_n(e, buf, sizeof(buf));
        nbd_log(NBD_LOG_ERR, "%s: TLS handshake failed: %s", peer, buf);
        ERR_clear_error();
        SSL_free(ssl);
        return -EPROTO;
    }
    int fl = fcntl(io->fd, F_GETFL);
    if (fl < 0 || fcntl(io->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        SSL_free(ssl);
        return -errno;
    }
    io->ssl = ssl;
    return 0;
}

const char *nbd_io_tls_version(const struct nbd_io *io)
{
    return io->ssl ? SSL_get_version(io->ssl) : NULL;
}
