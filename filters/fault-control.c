/* SPDX-License-Identifier: MIT */
/*
 * The fault filter's control file: faults switched at run time.  Each
 * request looks at the file's stat at most every FAULT_CONTROL_POLL_NS and
 * re-reads it when it changed, and re-reads the content at least once a
 * second whatever stat says (an edit inside one timestamp tick keeps the
 * same mtime and size).  So a change reaches every open connection within
 * a second of the edit, without a thread or inotify.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "filters/fault.h"

#define FAULT_CONTROL_POLL_NS (100ull * 1000 * 1000)
#define FAULT_CONTROL_REREAD_NS (900ull * 1000 * 1000)

struct fault_control {
    char *path;
    uint64_t disk_size;
    pthread_rwlock_t lock;          /* readers: requests; writer: a reload */
    struct fault_set cur;
    pthread_mutex_t check_lock;     /* one reloader at a time */
    atomic_uint_fast64_t next_check;
    uint64_t last_read;
    struct stat last_st;
    char *text;                     /* content of the current set */
    size_t text_len;
    bool warned;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fault_set_clear(struct fault_set *s)
{
    free(s->f);
    s->f = NULL;
    s->n = 0;
}

int fault_set_parse(struct fault_set *out, const char *text, size_t len, uint64_t disk_size,
                    const char *ctx, struct vdk_error **errp)
{
    out->f = NULL;
    out->n = 0;
    if (len > FAULT_CONTROL_MAX_BYTES)
        return vdk_error_setf(errp, EFBIG, "%s: larger than %u bytes", ctx,
                              FAULT_CONTROL_MAX_BYTES);
    struct fault *f = calloc(FAULT_CONTROL_MAX_LINES, sizeof(*f));
    char *line = malloc(len + 1);
    int r = 0;
    if (!f || !line) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto out;
    }
    size_t n = 0, pos = 0, lineno = 0;
    while (pos < len && r == 0) {
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        size_t l = e - pos;
        bool nul = memchr(text + pos, 0, l) != NULL;
        memcpy(line, text + pos, l);
        line[l] = 0;
        pos = e + 1;
        lineno++;
        /* Trim blanks and a DOS line end. */
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        char *t = s + strlen(s);
        while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
            *--t = 0;
        if (nul) {
            r = vdk_error_setf(errp, EINVAL, "%s line %zu: a NUL byte", ctx, lineno);
            break;
        }
        if (!*s || *s == '#')
            continue;
        if (n == FAULT_CONTROL_MAX_LINES) {
            r = vdk_error_setf(errp, E2BIG, "%s: more than %u faults", ctx,
                               FAULT_CONTROL_MAX_LINES);
            break;
        }
        char lctx[512];
        snprintf(lctx, sizeof(lctx), "%s line %zu", ctx, lineno);
        r = fault_parse_line(&f[n], s, disk_size, lctx, errp);
        if (r == 0)
            n++;
    }
    if (r == 0) {
        out->f = f;
        out->n = n;
        f = NULL;
    }
out:
    free(f);
    free(line);
    return r;
}

/* Read the whole file, bounded.  -ENOENT: gone (no faults). */
static int read_text(const char *path, char **out, size_t *len, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -EINVAL;
    }
    char *buf = malloc(FAULT_CONTROL_MAX_BYTES + 1);
    size_t n = 0;
    int r = buf ? 0 : -ENOMEM;
    while (r == 0 && n <= FAULT_CONTROL_MAX_BYTES) {
        ssize_t k = read(fd, buf + n, FAULT_CONTROL_MAX_BYTES + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            r = -errno;
        else if (k == 0)
            break;
        else
            n += (size_t)k;
    }
    close(fd);
    if (r < 0) {
        free(buf);
        return r;
    }
    *out = buf;
    *len = n;
    return 0;
}

static bool same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reload if changed.  Caller holds check_lock.  errp: start-up only. */
static int reload(struct fault_control *c, bool force, struct vdk_error **errp)
{
    uint64_t now = now_ns();
    struct stat st;
    if (!force && stat(c->path, &st) == 0 && same_stat(&st, &c->last_st) &&
        now - c->last_read < FAULT_CONTROL_REREAD_NS)
        return 0;
    char *text = NULL;
    size_t len = 0;
    memset(&st, 0, sizeof(st));
    int r = read_text(c->path, &text, &len, &st);
    c->last_read = now;
    if (r == -ENOENT && !errp) {
        text = strdup("");
        r = text ? 0 : -ENOMEM;
    }
    if (r < 0) {
        return vdk_error_setf_errno(errp, r, "fault: cannot read control=%s", c->path);
    }
    c->last_st = st;
    if (!force && c->text && len == c->text_len && memcmp(text, c->text, len) == 0) {
        free(text);
        return 0;
    }
    struct fault_set ns;
    struct vdk_error *err = NULL;
    char ctx[300];
    snprintf(ctx, sizeof(ctx), "fault: control=%s", c->path);
    r = fault_set_parse(&ns, text, len, c->disk_size, ctx, &err);
    if (r < 0) {
        if (errp) {
            *errp = err;
        } else {
            /* Keep the last good set; say so once per bad content. */
            vdk_warn("%s; keeping the faults in force", vdk_error_msg(err));
            vdk_error_free(err);
        }
        free(c->text);
        c->text = text;         /* do not warn again for the same content */
        c->text_len = len;
        return r;
    }
    pthread_rwlock_wrlock(&c->lock);
    struct fault_set old = c->cur;
    c->cur = ns;
    pthread_rwlock_unlock(&c->lock);
    fault_set_clear(&old);
    free(c->text);
    c->text = text;
    c->text_len = len;
    return 0;
}

int fault_control_open(struct fault_control **out, const char *path, uint64_t disk_size,
                       struct vdk_error **errp)
{
    *out = NULL;
    struct fault_control *c = calloc(1, sizeof(*c));
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    c->disk_size = disk_size;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* A reload must not starve behind a steady stream of requests. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->lock, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&c->check_lock, NULL);
    atomic_init(&c->next_check, now_ns() + FAULT_CONTROL_POLL_NS);
    int r = reload(c, true, errp);
    if (r < 0) {
        fault_control_close(c);
        return r;
    }
    *out = c;
    return 0;
}

void fault_control_close(struct fault_control *c)
{
    if (!c)
        return;
    fault_set_clear(&c->cur);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->check_lock);
    free(c->text);
    free(c->path);
    free(c);
}

const struct fault_set *fault_control_get(struct fault_control *c)
{
    uint64_t now = now_ns();
    if (now >= atomic_load(&c->next_check) && pthread_mutex_trylock(&c->check_lock) == 0) {
        atomic_store(&c->next_check, now + FAULT_CONTROL_POLL_NS);
        reload(c, false, NULL);
        pthread_mutex_unlock(&c->check_lock);
    }
    pthread_rwlock_rdlock(&c->lock);
    return &c->cur;
}

void fault_control_put(struct fault_control *c)
{
    pthread_rwlock_unlock(&c->lock);
}
