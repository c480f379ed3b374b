/* SPDX-License-Identifier: MIT */
/*
 * The rbd: filename parser (contract in rbd-spec.h).  A token runs to the
 * first unescaped delimiter; backslashes are removed as it is copied.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/rbd-spec.h"

#define RBD_PREFIX "rbd:"

bool vdk_rbd_spec_is_rbd(const char *name)
{
    return name && strncmp(name, RBD_PREFIX, strlen(RBD_PREFIX)) == 0;
}

/*
 * Copy from *p up to (not including) the first unescaped character of
 * delims, unescaping; *p is left on the delimiter (or the final NUL).
 * NULL when out of memory or the token is longer than RBD_SPEC_MAX_NAME.
 */
static char *next_token(const char **p, const char *delims, bool *too_long)
{
    const char *s = *p;
    size_t cap = strlen(s) + 1, n = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    while (*s && !strchr(delims, *s)) {
        if (*s == '\\' && s[1])
            s++;
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    if (n > RBD_SPEC_MAX_NAME) {
        *too_long = true;
        free(out);
        return NULL;
    }
    return out;
}

int vdk_rbd_spec_check_name(const char *what, const char *v, bool required,
                            struct vdk_error **errp)
{
    if (!v || !*v)
        return required ? vdk_error_setf(errp, EINVAL, "rbd: no %s name given", what) : 0;
    if (strlen(v) > RBD_SPEC_MAX_NAME)
        return vdk_error_setf(errp, EINVAL, "rbd: the %s name is longer than %d bytes", what,
                              RBD_SPEC_MAX_NAME);
    return 0;
}

static int oom(struct rbd_spec *s, struct vdk_error **errp)
{
    vdk_rbd_spec_clear(s);
    return vdk_error_setf(errp, ENOMEM, "out of memory");
}

/* Fail with a message, leaving *s empty. */
#define bad(s, errp, ...) (vdk_rbd_spec_clear(s), vdk_error_setf(errp, EINVAL, __VA_ARGS__))

/* One KEY=VALUE pair at *p (which is just past a ':'). */
static int parse_pair(const char **p, struct rbd_spec *s, struct vdk_error **errp)
{
    bool too_long = false;
    char *key = next_token(p, "=:", &too_long);
    if (!key)
        return too_long ? bad(s, errp, "rbd: an option name is longer than 1024 bytes")
                        : oom(s, errp);
    if (!*key) {
        free(key);
        return bad(s, errp, "rbd: empty option name (rbd:...:KEY=VALUE)");
    }
    if (**p != '=') {
        vdk_error_setf(errp, EINVAL, "rbd: option '%.64s' has no value (KEY=VALUE)", key);
        free(key);
        vdk_rbd_spec_clear(s);
        return -EINVAL;
    }
    (*p)++;
    char *value = next_token(p, ":", &too_long);
    if (!value) {
        free(key);
        return too_long ? bad(s, errp, "rbd: an option value is longer than 1024 bytes")
                        : oom(s, errp);
    }
    char **slot = NULL;
    if (strcmp(key, "conf") == 0)
        slot = &s->conf;
    else if (strcmp(key, "id") == 0)
        slot = &s->user;
    if (slot) {
        free(key);
        free(*slot); /* the last one counts, as for Ceph options */
        *slot = value;
        return 0;
    }
    if (s->n_pairs == RBD_SPEC_MAX_PAIRS) {
        free(key);
        free(value);
        return bad(s, errp, "rbd: more than 32 options");
    }
    s->key[s->n_pairs] = key;
    s->value[s->n_pairs] = value;
    s->n_pairs++;
    return 0;
}

int vdk_rbd_spec_parse(const char *name, struct rbd_spec *s, struct vdk_error **errp)
{
    memset(s, 0, sizeof(*s));
    if (!vdk_rbd_spec_is_rbd(name))
        return vdk_error_setf(errp, EINVAL, "not an rbd: name");
    if (strlen(name) > RBD_SPEC_MAX_LEN)
        return vdk_error_setf(errp, EINVAL, "rbd: the name is longer than %d bytes",
                              RBD_SPEC_MAX_LEN);
    const char *p = name + strlen(RBD_PREFIX);
    bool too_long = false;
    s->pool = next_token(&p, "/:@", &too_long);
    if (!s->pool)
        return too_long ? bad(s, errp, "rbd: the pool name is longer than 1024 bytes")
                        : oom(s, errp);
    if (*p != '/' || !*s->pool)
        return bad(s, errp, "rbd: no pool name in '%.200s' (rbd:POOL/IMAGE)", name);
    p++;
    /* [NAMESPACE/]IMAGE: at most one more unescaped '/'. */
    char *first = next_token(&p, "/:@", &too_long);
    if (!first)
        return too_long ? bad(s, errp, "rbd: the image name is longer than 1024 bytes")
                        : oom(s, errp);
    if (*p == '/') {
        s->ns = first;
        p++;
        s->image = next_token(&p, "/:@", &too_long);
        if (!s->image)
            return too_long ? bad(s, errp, "rbd: the image name is longer than 1024 bytes")
                            : oom(s, errp);
        if (*p == '/')
            return bad(s, errp, "rbd: too many '/' in '%.200s' "
                       "(rbd:POOL[/NAMESPACE]/IMAGE)", name);
        if (!*s->ns)
            return bad(s, errp, "rbd: empty namespace in '%.200s'", name);
    } else {
        s->image = first;
    }
    if (!*s->image)
        return bad(s, errp, "rbd: no image name in '%.200s' (rbd:POOL/IMAGE)", name);
    if (*p == '@') {
        p++;
        s->snap = next_token(&p, ":", &too_long);
        if (!s->snap)
            return too_long ? bad(s, errp, "rbd: the snapshot name is longer than 1024 bytes")
                            : oom(s, errp);
        if (!*s->snap)
            return bad(s, errp, "rbd: empty snapshot name in '%.200s'", name);
    }
    while (*p == ':') {
        p++;
        int r = parse_pair(&p, s, errp);
        if (r < 0)
            return r;
    }
    if (*p) /* only an unescaped '@' after the snapshot can stop us here */
        return bad(s, errp, "rbd: unexpected '%.1s' (escape it with a backslash)", p);
    if (s->conf && !*s->conf)
        return bad(s, errp, "rbd: empty conf= in '%.200s'", name);
    if (s->user && !*s->user)
        return bad(s, errp, "rbd: empty id= in '%.200s'", name);
    return 0;
}

char *vdk_rbd_spec_display(const struct rbd_spec *s)
{
    char *out = NULL;
    if (asprintf(&out, "%s/%s%s%s%s%s", s->pool, s->ns ? s->ns : "", s->ns ? "/" : "",
                 s->image, s->snap ? "@" : "", s->snap ? s->snap : "") < 0)
        return NULL;
    return out;
}

void vdk_rbd_spec_clear(struct rbd_spec *s)
{
    free(s->pool);
    free(s->ns);
    free(s->image);
    free(s->snap);
    free(s->conf);
    free(s->user);
    for (int i = 0; i < s->n_pairs; i++) {
        free(s->key[i]);
        free(s->value[i]);
    }
    memset(s, 0, sizeof(*s));
}
