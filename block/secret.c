/* SPDX-License-Identifier: MIT */
/* Registry of --object secret definitions: see vdk/secret.h. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "block/crypto/crypto.h"
#include "block/driver.h"
#include "vdk/options.h"
#include "vdk/secret.h"

/* Bounds on untrusted secret input. */
#define SECRET_MAX_LEN (64 * 1024)
#define MAX_OBJECTS 256

struct secret {
    char *id;
    char *data;
    size_t len;
};

static struct secret objects[MAX_OBJECTS];
static size_t n_objects;
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;

/* Secrets use the key-material allocator: own locked pages, not dumped. */
static char *secure_alloc(size_t len)
{
    return vdk_secure_alloc(len + 1); /* zero-filled: NUL-terminated */
}

void vdk_secret_free(char *data, size_t len)
{
    vdk_secure_free(data, len + 1);
}

static int read_secret_file(const char *path, char **out, size_t *len,
                            struct vdk_error **errp)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "cannot read secret file '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SECRET_MAX_LEN) {
        close(fd);
        return vdk_error_setf(errp, EINVAL, "secret file '%s' is not a regular file of at "
                              "most %d bytes", path, SECRET_MAX_LEN);
    }
    char *buf = secure_alloc((size_t)st.st_size);
    if (!buf) {
        close(fd);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    ssize_t got = vdk_read_full(fd, buf, (size_t)st.st_size);
    close(fd);
    if (got < 0) {
        vdk_secret_free(buf, (size_t)st.st_size);
        return vdk_error_setf_errno(errp, (int)-got, "cannot read secret file '%s'", path);
    }
    *out = buf;
    *len = (size_t)got;
    return 0;
}

static int decode_base64(char **data, size_t *len, struct vdk_error **errp)
{
    char *dec = secure_alloc(*len);
    if (!dec)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    int outl = 0, fin = 0;
    int ok = ctx && (EVP_DecodeInit(ctx), 1) &&
             EVP_DecodeUpdate(ctx, (unsigned char *)dec, &outl,
                              (const unsigned char *)*data, (int)*len) >= 0 &&
             EVP_DecodeFinal(ctx, (unsigned char *)dec + outl, &fin) > 0;
    EVP_ENCODE_CTX_free(ctx);
    if (!ok) {
        vdk_secret_free(dec, *len);
        return vdk_error_setf(errp, EINVAL, "secret is not valid base64");
    }
    vdk_secret_free(*data, *len);
    *data = dec;
    *len = (size_t)(outl + fin);
    return 0;
}

int vdk_object_add(const char *def, struct vdk_error **errp)
{
    struct vdk_opts *o = vdk_opts_new();
    char *data = NULL;
    size_t len = 0;
    int r;
    if (!o)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    /* Errors below never quote the definition: it may hold the secret. */
    r = vdk_opts_parse(o, def, "qom-type", NULL);
    if (r < 0) {
        r = vdk_error_setf(errp, EINVAL, "malformed --object definition");
        goto out;
    }
    const char *type = vdk_opts_get(o, "qom-type");
    const char *id = vdk_opts_get(o, "id");
    const char *d = vdk_opts_get(o, "data");
    const char *file = vdk_opts_get(o, "file");
    const char *format = vdk_opts_get(o, "format");
    if (!type || strcmp(type, "secret") != 0) {
        r = vdk_error_setf(errp, EINVAL, "unsupported object type '%s' (only 'secret')",
                           type ? type : "");
        goto out;
    }
    if (!id || !*id) {
        r = vdk_error_setf(errp, EINVAL, "--object secret needs id=");
        goto out;
    }
    if (!!d == !!file) {
        r = vdk_error_setf(errp, EINVAL, "secret '%s' needs exactly one of data= or file=", id);
        goto out;
    }
    if (format && strcmp(format, "raw") != 0 && strcmp(format, "base64") != 0) {
        r = vdk_error_setf(errp, EINVAL, "secret '%s': format must be raw or base64", id);
        goto out;
    }
    if (vdk_opts_check_unused(o, "object 'secret'", NULL) < 0) {
        r = vdk_error_setf(errp, EINVAL, "secret '%s': unknown parameter", id);
        goto out;
    }
    if (d) {
        len = strlen(d);
        if (len > SECRET_MAX_LEN) {
            r = vdk_error_setf(errp, EINVAL, "secret '%s' too long", id);
            goto out;
        }
        data = secure_alloc(len);
        if (!data) {
            r = vdk_error_setf(errp, ENOMEM, "out of memory");
            goto out;
        }
        memcpy(data, d, len);
        vdk_warn("secret '%s' given with data= is visible to other users of this "
                 "machine (ps); prefer file=", id);
    } else if ((r = read_secret_file(file, &data, &len, errp)) < 0) {
        goto out;
    }
    if (format && strcmp(format, "base64") == 0 && (r = decode_base64(&data, &len, errp)) < 0)
        goto out;
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; i < n_objects; i++) {
        if (strcmp(objects[i].id, id) == 0) {
            pthread_mutex_unlock(&objects_lock);
            r = vdk_error_setf(errp, EEXIST, "duplicate object id '%s'", id);
            goto out;
        }
    }
    if (n_objects == MAX_OBJECTS) {
        pthread_mutex_unlock(&objects_lock);
        r = vdk_error_setf(errp, E2BIG, "too many objects");
        goto out;
    }
    char *idc = strdup(id);
    if (!idc) {
        pthread_mutex_unlock(&objects_lock);
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    objects[n_objects++] = (struct secret){ idc, data, len };
    data = NULL;
    pthread_mutex_unlock(&objects_lock);
    r = 0;
out:
    vdk_secret_free(data, len);
    /* Wipe the parsed copy of data= before freeing the list. */
    if (o && vdk_opts_peek(o, "data")) {
        char *p = (char *)vdk_opts_peek(o, "data");
        OPENSSL_cleanse(p, strlen(p));
    }
    vdk_opts_free(o);
    return r;
}

int vdk_secret_get(const char *id, char **out, size_t *len, struct vdk_error **errp)
{
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; i < n_objects; i++) {
        if (strcmp(objects[i].id, id) == 0) {
            char *c = secure_alloc(objects[i].len);
            if (!c) {
                pthread_mutex_unlock(&objects_lock);
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            }
            memcpy(c, objects[i].data, objects[i].len);
            *out = c;
            *len = objects[i].len;
            pthread_mutex_unlock(&objects_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&objects_lock);
    return vdk_error_setf(errp, ENOENT, "no secret with id '%s' (give it with "
                          "--object secret,id=%s,file=PATH)", id, id);
}

void vdk_objects_clear(void)
{
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; i < n_objects; i++) {
        vdk_secret_free(objects[i].data, objects[i].len);
        free(objects[i].id);
    }
    n_objects = 0;
    pthread_mutex_unlock(&objects_lock);
}

/* Register an already secure copy under id (takes ownership of data). */
static void remember(const char *id, char *data, size_t len)
{
    pthread_mutex_lock(&objects_lock);
    char *idc = n_objects < MAX_OBJECTS ? strdup(id) : NULL;
    if (idc)
        objects[n_objects++] = (struct secret){ idc, data, len };
    pthread_mutex_unlock(&objects_lock);
    if (!idc)
        vdk_secret_free(data, len);
}

static int copy_secret(const char *src, size_t len, char **out, size_t *olen,
                       struct vdk_error **errp)
{
    char *c = secure_alloc(len);
    if (!c)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memcpy(c, src, len);
    *out = c;
    *olen = len;
    return 0;
}

/* Read one line from the terminal with echo off.  0, -ENOTTY, -EIO. */
static int prompt_tty(const char *id, const char *what, char **out, size_t *len)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -ENOTTY;
    struct termios old, noecho;
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        noecho.c_lflag |= ICANON;
        (void)tcsetattr(fd, TCSAFLUSH, &noecho);
    }
    char prompt[256];
    int pl = snprintf(prompt, sizeof(prompt), "Enter %s%s%s%s: ", what,
                      id ? " (secret '" : "", id ? id : "", id ? "')" : "");
    if (pl > 0 && write(fd, prompt, (size_t)pl) < 0)
        pl = -1;
    char *buf = secure_alloc(SECRET_MAX_LEN);
    size_t got = 0;
    int r = buf ? 0 : -ENOMEM;
    while (r == 0 && got < SECRET_MAX_LEN) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || ch == '\n')
            break;
        buf[got++] = ch;
    }
    if (restore)
        (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0)
        r = r ? r : 0;
    close(fd);
    if (r < 0)
        return r;
    *out = buf;
    *len = got;
    return 0;
}

int vdk_secret_lookup(const char *id, const char *what, char **out, size_t *len,
                      struct vdk_error **errp)
{
    const char *key = id ? id : "";
    pthread_mutex_lock(&objects_lock);
    for (size_t i = 0; i < n_objects; i++) {
        if (strcmp(objects[i].id, key) == 0) {
            int r = copy_secret(objects[i].data, objects[i].len, out, len, errp);
            pthread_mutex_unlock(&objects_lock);
            return r;
        }
    }
    pthread_mutex_unlock(&objects_lock);
    char env[160] = "VDK_SECRET";
    if (id) {
        size_t e = strlen(env);
        env[e++] = '_';
        for (const char *p = id; *p && e + 1 < sizeof(env); p++) {
            char c = *p;
            env[e++] = (c >= 'a' && c <= 'z') ? (char)(c - 32)
                     : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? c : '_';
        }
        env[e] = 0;
    }
    const char *v = getenv(env);
    if (v) {
        size_t l = strlen(v);
        if (l > SECRET_MAX_LEN)
            return vdk_error_setf(errp, EINVAL, "environment variable %s is too long", env);
        return copy_secret(v, l, out, len, errp);
    }
    if (isatty(STDIN_FILENO)) {
        char *buf = NULL;
        size_t l = 0;
        if (prompt_tty(id, what, &buf, &l) == 0) {
            int r = copy_secret(buf, l, out, len, errp);
            if (r == 0)
                remember(key, buf, l);
            else
                vdk_secret_free(buf, SECRET_MAX_LEN);
            return r;
        }
    }
    if (!id)
        return vdk_error_setf(errp, EINVAL, "no %s given: use key-secret=ID with --object "
                              "secret,id=ID,file=PATH, or set VDK_SECRET", what);
    return vdk_error_setf(errp, ENOENT, "no secret with id '%s' (give it with --object "
                          "secret,id=%s,file=PATH or the environment variable %s)", id, id,
                          env);
}
