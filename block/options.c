/* SPDX-License-Identifier: MIT */
/* Flat key=value option lists and typed option tables (vdk/options.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/options.h"

struct vdk_opt_item {
    char *key;
    char *value;
    uint32_t hash; /* of key: lookups compare it before the string */
    bool used;
};

struct vdk_opts {
    struct vdk_opt_item *items;
    size_t n, cap;
};

struct vdk_opts *vdk_opts_new(void)
{
    return calloc(1, sizeof(struct vdk_opts));
}

/* Values may be secrets ("--object secret,data=..."): wipe before free. */
static void free_value(char *v)
{
    if (v) {
        explicit_bzero(v, strlen(v));
        free(v);
    }
}

void vdk_opts_free(struct vdk_opts *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++) {
        free(o->items[i].key);
        free_value(o->items[i].value);
    }
    free(o->items);
    free(o);
}

static uint32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *key; key++)
        h = (h ^ (uint8_t)*key) * 16777619u;
    return h;
}

/*
 * Lists are short, so lookups are linear; the hash keeps a list at the
 * VDK_OPTS_MAX_ITEMS bound (an untrusted option string) from costing a
 * string compare per pair of items.
 */
static struct vdk_opt_item *find_item(const struct vdk_opts *o, const char *key)
{
    if (!o)
        return NULL;
    uint32_t h = key_hash(key);
    for (size_t i = 0; i < o->n; i++)
        if (o->items[i].hash == h && strcmp(o->items[i].key, key) == 0)
            return &o->items[i];
    return NULL;
}

static int set_item(struct vdk_opts *o, const char *key, size_t keylen,
                    const char *value, bool used)
{
    char *k = strndup(key, keylen);
    if (!k)
        return -ENOMEM;
    struct vdk_opt_item *it = find_item(o, k);
    char *v = strdup(value ? value : "");
    if (!v) {
        free(k);
        return -ENOMEM;
    }
    if (it) {
        free(k);
        free_value(it->value);
        it->value = v;
        it->used = used;
        return 0;
    }
    if (o->n >= VDK_OPTS_MAX_ITEMS) {
        free(k);
        free(v);
        return -E2BIG;
    }
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        struct vdk_opt_item *ni = realloc(o->items, nc * sizeof(*ni));
        if (!ni) {
            free(k);
            free(v);
            return -ENOMEM;
        }
        o->items = ni;
        o->cap = nc;
    }
    o->items[o->n++] = (struct vdk_opt_item){ k, v, key_hash(k), used };
    return 0;
}

int vdk_opts_set(struct vdk_opts *o, const char *key, const char *value)
{
    if (!o || !key || !*key)
        return -EINVAL;
    return set_item(o, key, strlen(key), value, false);
}

int vdk_opts_set_default(struct vdk_opts *o, const char *key, const char *value)
{
    if (find_item(o, key))
        return 0;
    return vdk_opts_set(o, key, value);
}

int vdk_opts_del(struct vdk_opts *o, const char *key)
{
    struct vdk_opt_item *it = find_item(o, key);
    if (!it)
        return -ENOENT;
    size_t i = (size_t)(it - o->items);
    free(it->key);
    free_value(it->value);
    memmove(&o->items[i], &o->items[i + 1], (o->n - i - 1) * sizeof(*it));
    o->n--;
    return 0;
}

struct vdk_opts *vdk_opts_clone(const struct vdk_opts *o)
{
    struct vdk_opts *c = vdk_opts_new();
    if (!c)
        return NULL;
    if (o && vdk_opts_merge(c, o, NULL) < 0) {
        vdk_opts_free(c);
        return NULL;
    }
    return c;
}

/*
 * Split at unescaped commas; ",," is a literal comma.  Each element is
 * "key=value", "value" (implied key) or "key" (boolean on).
 */
int vdk_opts_parse(struct vdk_opts *o, const char *str, const char *implied_key,
                   struct vdk_error **errp)
{
    if (!str)
        return 0;
    size_t len = strlen(str);
    if (len > VDK_OPTS_MAX_LEN)
        return vdk_error_setf(errp, EINVAL, "option string too long (%zu bytes, at most %d)",
                              len, VDK_OPTS_MAX_LEN);
    char *elem = malloc(len + 1);
    if (!elem)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *p = str;
    bool first = true;
    int ret = 0;
    while (*p || first) {
        size_t el = 0;
        /* Copy one element, un-doubling commas. */
        while (*p) {
            if (*p == ',') {
                if (p[1] == ',') {
                    elem[el++] = ',';
                    p += 2;
                    continue;
                }
                break;
            }
            elem[el++] = *p++;
        }
        elem[el] = '\0';
        bool had_comma = (*p == ',');
        if (had_comma)
            p++;
        if (el == 0) {
            if (first && !had_comma && !*p)
                break; /* empty string: nothing */
            ret = vdk_error_setf(errp, EINVAL, "empty element in option string '%s'", str);
            break;
        }
        char *eq = strchr(elem, '=');
        if (eq == elem) {
            ret = vdk_error_setf(errp, EINVAL, "option string '%s' has an empty key", str);
            break;
        }
        if (eq)
            ret = set_item(o, elem, (size_t)(eq - elem), eq + 1, false);
        else if (first && implied_key)
            ret = set_item(o, implied_key, strlen(implied_key), elem, false);
        else
            ret = set_item(o, elem, el, "on", false);
        if (ret < 0) {
            ret = vdk_error_setf(errp, -ret, ret == -E2BIG ? "too many options (at most %d)"
                                                          : "out of memory parsing options",
                                 VDK_OPTS_MAX_ITEMS);
            break;
        }
        first = false;
        if (had_comma && !*p) {
            ret = vdk_error_setf(errp, EINVAL, "option string '%s' ends with a comma", str);
            break;
        }
    }
    explicit_bzero(elem, len + 1); /* option strings may carry secrets */
    free(elem);
    return ret;
}

const char *vdk_opts_get(struct vdk_opts *o, const char *key)
{
    struct vdk_opt_item *it = find_item(o, key);
    if (!it)
        return NULL;
    it->used = true;
    return it->value;
}

const char *vdk_opts_peek(const struct vdk_opts *o, const char *key)
{
    struct vdk_opt_item *it = find_item(o, key);
    return it ? it->value : NULL;
}

bool vdk_opts_has(const struct vdk_opts *o, const char *key)
{
    return find_item(o, key) != NULL;
}

size_t vdk_opts_count(const struct vdk_opts *o)
{
    return o ? o->n : 0;
}

bool vdk_opts_nth(const struct vdk_opts *o, size_t i, const char **key,
                  const char **value)
{
    if (!o || i >= o->n)
        return false;
    if (key)
        *key = o->items[i].key;
    if (value)
        *value = o->items[i].value;
    return true;
}

struct vdk_opts *vdk_opts_extract_prefix(struct vdk_opts *o, const char *prefix)
{
    struct vdk_opts *c = vdk_opts_new();
    if (!c || !o)
        return c;
    size_t pl = strlen(prefix);
    size_t i = 0;
    while (i < o->n) {
        struct vdk_opt_item *it = &o->items[i];
        if (strncmp(it->key, prefix, pl) == 0 && it->key[pl] == '.' && it->key[pl + 1]) {
            if (vdk_opts_set(c, it->key + pl + 1, it->value) < 0) {
                vdk_opts_free(c);
                return NULL;
            }
            vdk_opts_del(o, it->key);
            continue;
        }
        i++;
    }
    return c;
}

int vdk_opts_merge(struct vdk_opts *dst, const struct vdk_opts *src,
                   const char *prefix)
{
    for (size_t i = 0; src && i < src->n; i++) {
        int r;
        if (prefix) {
            char *k = NULL;
            if (asprintf(&k, "%s.%s", prefix, src->items[i].key) < 0)
                return -ENOMEM;
            r = vdk_opts_set(dst, k, src->items[i].value);
            free(k);
        } else {
            r = vdk_opts_set(dst, src->items[i].key, src->items[i].value);
        }
        if (r < 0)
            return r;
    }
    return 0;
}

/* Append s with its commas doubled. */
static char *put_escaped(char *p, const char *s)
{
    for (; *s; s++) {
        if (*s == ',')
            *p++ = ',';
        *p++ = *s;
    }
    return p;
}

char *vdk_opts_to_string(const struct vdk_opts *o)
{
    size_t cap = 1;
    for (size_t i = 0; o && i < o->n; i++)
        cap += 2 * strlen(o->items[i].key) + 2 * strlen(o->items[i].value) + 2;
    char *s = malloc(cap), *p = s;
    if (!s)
        return NULL;
    for (size_t i = 0; o && i < o->n; i++) {
        if (i)
            *p++ = ',';
        /* Keys may hold commas too ("a,,b=1" parses to key "a,b"). */
        p = put_escaped(p, o->items[i].key);
        *p++ = '=';
        p = put_escaped(p, o->items[i].value);
    }
    *p = '\0';
    return s;
}

int vdk_opts_check_unused(const struct vdk_opts *o, const char *context,
                          struct vdk_error **errp)
{
    for (size_t i = 0; o && i < o->n; i++)
        if (!o->items[i].used)
            return vdk_error_setf(errp, EINVAL, "invalid option '%s' for %s",
                                  o->items[i].key, context);
    return 0;
}

/* ---- typed tables ---- */

const struct vdk_opt_desc *vdk_opt_desc_find(const struct vdk_opt_desc *table,
                                             const char *name)
{
    for (; table && table->name; table++)
        if (strcmp(table->name, name) == 0)
            return table;
    return NULL;
}

static int enum_index(const char *const *values, const char *v)
{
    for (int i = 0; values && values[i]; i++)
        if (strcmp(values[i], v) == 0)
            return i;
    return -1;
}

static char *enum_list(const char *const *values)
{
    size_t len = 1;
    for (int i = 0; values && values[i]; i++)
        len += strlen(values[i]) + 2;
    char *s = calloc(1, len);
    for (int i = 0; s && values && values[i]; i++) {
        if (i)
            strcat(s, ", ");
        strcat(s, values[i]);
    }
    return s;
}

static int check_value(const struct vdk_opt_desc *d, const char *v,
                       struct vdk_error **errp)
{
    uint64_t u;
    bool b;
    switch (d->type) {
    case VDK_OPT_STRING:
        return 0;
    case VDK_OPT_BOOL:
        if (vdk_parse_bool(v, &b) < 0)
            return vdk_error_setf(errp, EINVAL,
                                  "parameter '%s' expects 'on' or 'off', not '%s'", d->name, v);
        return 0;
    case VDK_OPT_SIZE:
        if (vdk_parse_size(v, &u) < 0)
            return vdk_error_setf(errp, EINVAL,
                                  "parameter '%s' expects a size (bytes with optional "
                                  "k, M, G, T, P or E suffix), not '%s'", d->name, v);
        return 0;
    case VDK_OPT_NUMBER:
        if (vdk_parse_uint(v, &u) < 0)
            return vdk_error_setf(errp, EINVAL, "parameter '%s' expects a number, not '%s'",
                                  d->name, v);
        return 0;
    case VDK_OPT_ENUM:
        if (enum_index(d->values, v) < 0) {
            char *l = enum_list(d->values);
            int r = vdk_error_setf(errp, EINVAL, "parameter '%s' expects one of %s, not '%s'",
                                   d->name, l ? l : "?", v);
            free(l);
            return r;
        }
        return 0;
    }
    return 0;
}

int vdk_opts_validate(const struct vdk_opts *o, const struct vdk_opt_desc *table,
                      const char *context, struct vdk_error **errp)
{
    for (size_t i = 0; o && i < o->n; i++) {
        const char *k = o->items[i].key;
        if (strchr(k, '.'))
            continue;
        const struct vdk_opt_desc *d = vdk_opt_desc_find(table, k);
        if (!d)
            return vdk_error_setf(errp, EINVAL, "invalid option '%s' for %s", k, context);
        int r = check_value(d, o->items[i].value, errp);
        if (r < 0)
            return r;
    }
    return 0;
}

/*
 * qemu sorts the formatted lines ("  name=<type> ..."), so a name sorts as
 * if followed by '=': "encrypt.format" comes before "encrypt".
 */
static int desc_cmp(const void *a, const void *b)
{
    const struct vdk_opt_desc *const *x = a, *const *y = b;
    const unsigned char *p = (const unsigned char *)(*x)->name;
    const unsigned char *q = (const unsigned char *)(*y)->name;
    for (;; p++, q++) {
        int c = *p ? *p : '=', d = *q ? *q : '=';
        if (c != d)
            return c - d;
        if (!*p || !*q)
            return strcmp((const char *)p, (const char *)q);
    }
}

void vdk_opts_print_help(FILE *out, const char *title,
                         const struct vdk_opt_desc *table)
{
    size_t n = 0;
    while (table && table[n].name)
        n++;
    fprintf(out, "%s\n", title ? title : "Supported options:");
    const struct vdk_opt_desc **sorted = calloc(n ? n : 1, sizeof(*sorted));
    if (!sorted)
        return;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &table[i];
    qsort(sorted, n, sizeof(*sorted), desc_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct vdk_opt_desc *d = sorted[i];
        const char *t = d->type == VDK_OPT_SIZE ? "size"
                      : d->type == VDK_OPT_BOOL ? "bool (on/off)"
                      : d->type == VDK_OPT_NUMBER ? "num" : "str";
        char head[160];
        snprintf(head, sizeof(head), "%s=<%s>", d->name, t);
        fprintf(out, "  %-22s - %s", head, d->help ? d->help : "");
        if (d->type == VDK_OPT_ENUM) {
            char *l = enum_list(d->values);
            fprintf(out, " (allowed values: %s)", l ? l : "");
            free(l);
        }
        /* No "(default: ...)": qemu-img's create help shows none. */
        fputc('\n', out);
    }
    free(sorted);
}

int vdk_opts_get_size(struct vdk_opts *o, const char *key, uint64_t def,
                      uint64_t *out, struct vdk_error **errp)
{
    const char *v = vdk_opts_get(o, key);
    *out = def;
    if (!v)
        return 0;
    if (vdk_parse_size(v, out) < 0)
        return vdk_error_setf(errp, EINVAL,
                              "parameter '%s' expects a size (bytes with optional "
                              "k, M, G, T, P or E suffix), not '%s'", key, v);
    return 0;
}

int vdk_opts_get_uint(struct vdk_opts *o, const char *key, uint64_t def,
                      uint64_t *out, struct vdk_error **errp)
{
    const char *v = vdk_opts_get(o, key);
    *out = def;
    if (!v)
        return 0;
    if (vdk_parse_uint(v, out) < 0)
        return vdk_error_setf(errp, EINVAL, "parameter '%s' expects a number, not '%s'", key, v);
    return 0;
}

int vdk_opts_get_bool(struct vdk_opts *o, const char *key, bool def, bool *out,
                      struct vdk_error **errp)
{
    const char *v = vdk_opts_get(o, key);
    *out = def;
    if (!v)
        return 0;
    if (vdk_parse_bool(v, out) < 0)
        return vdk_error_setf(errp, EINVAL, "parameter '%s' expects 'on' or 'off', not '%s'",
                              key, v);
    return 0;
}

int vdk_opts_get_enum(struct vdk_opts *o, const char *key,
                      const char *const *values, int def_index,
                      struct vdk_error **errp)
{
    const char *v = vdk_opts_get(o, key);
    if (!v)
        return def_index;
    int i = enum_index(values, v);
    if (i < 0) {
        char *l = enum_list(values);
        int r = vdk_error_setf(errp, EINVAL, "parameter '%s' expects one of %s, not '%s'",
                               key, l ? l : "?", v);
        free(l);
        return r;
    }
    return i;
}
