/* SPDX-License-Identifier: MIT */
/*
 * Boot Loader Specification Type #1 entries (UAPI.1): "key value" lines;
 * linux, initrd (repeatable), options (repeatable, joined), title,
 * version, machine-id, sort-key.  Their order: entries with a sort-key
 * first, by sort-key, then machine-id, then version (newest first); the
 * rest after them by file name, newest version first.  Boot counting
 * ("+N-M" in file names) is not applied.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/image/image.h"

void img_choice_clear(struct img_choice *c)
{
    free(c->kernel);
    for (int i = 0; i < c->ninitrd; i++)
        free(c->initrd[i]);
    free(c->options);
    memset(c, 0, sizeof(*c));
}

/* Append `word` (len bytes) to *opts with a space; bounded. */
int img_options_add(char **opts, const char *word, size_t len,
                    struct vdk_error **errp)
{
    size_t have = *opts ? strlen(*opts) : 0;
    if (len == 0)
        return 0;
    if (have + 1 + len >= IMG_OPTIONS_MAX)
        return vdk_error_setf(errp, E2BIG, "kernel options longer than %u "
                              "bytes", IMG_OPTIONS_MAX);
    char *p = realloc(*opts, have + len + 2);
    if (!p)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (have)
        p[have++] = ' ';
    memcpy(p + have, word, len);
    p[have + len] = 0;
    *opts = p;
    return 0;
}

static void copy_field(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, v, len);
    dst[len] = 0;
}

int img_add_path(char **slot, const char *v, size_t len, struct vdk_error **errp)
{
    if (len == 0 || len >= IMG_PATH_MAX)
        return vdk_error_setf(errp, EINVAL, "bad path length %zu", len);
    if (memchr(v, 0, len))
        return vdk_error_setf(errp, EINVAL, "a path holds a NUL byte");
    free(*slot);
    *slot = strndup(v, len);
    return *slot ? 0 : vdk_error_setf(errp, ENOMEM, "out of memory");
}

int img_bls_parse(const char *text, size_t len, const char *file,
                  struct img_choice *out, struct vdk_error **errp)
{
    memset(out, 0, sizeof(*out));
    out->kind = IMG_KIND_BLS;
    copy_field(out->file, sizeof(out->file), file, strlen(file));
    if (len > IMG_TEXT_MAX)
        return vdk_error_setf(errp, EFBIG, "entry '%s' is too big", file);
    int r = 0;
    const char *p = text, *end = text + len;
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        while (p < le && isspace((unsigned char)*p))
            p++;
        const char *k = p;
        while (p < le && !isspace((unsigned char)*p))
            p++;
        size_t klen = (size_t)(p - k);
        while (p < le && isspace((unsigned char)*p))
            p++;
        const char *v = p;
        const char *ve = le;
        while (ve > v && isspace((unsigned char)ve[-1]))
            ve--;
        size_t vlen = (size_t)(ve - v);
        p = nl ? nl + 1 : end;
        if (klen == 0 || *k == '#')
            continue;
#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(k, s, klen))
        if (KEY("title"))
            copy_field(out->title, sizeof(out->title), v, vlen);
        else if (KEY("version"))
            copy_field(out->version, sizeof(out->version), v, vlen);
        else if (KEY("machine-id"))
            copy_field(out->machine_id, sizeof(out->machine_id), v, vlen);
        else if (KEY("sort-key"))
            copy_field(out->sort_key, sizeof(out->sort_key), v, vlen);
        else if (KEY("linux"))
            r = img_add_path(&out->kernel, v, vlen, errp);
        else if (KEY("options"))
            r = img_options_add(&out->options, v, vlen, errp);
        else if (KEY("initrd")) {
            /* One path per line, though some tools put several. */
            const char *w = v;
            while (w < ve && r == 0) {
                const char *we = w;
                while (we < ve && !isspace((unsigned char)*we))
                    we++;
                if (out->ninitrd == IMG_INITRD_MAX)
                    r = vdk_error_setf(errp, E2BIG, "more than %d initrds",
                                       IMG_INITRD_MAX);
                else if ((r = img_add_path(&out->initrd[out->ninitrd], w,
                                           (size_t)(we - w), errp)) == 0)
                    out->ninitrd++;
                w = we;
                while (w < ve && isspace((unsigned char)*w))
                    w++;
            }
        }
#undef KEY
    }
    if (r == 0 && !out->kernel)
        r = -ENOENT;          /* e.g. a Type #2 "efi" entry: not ours */
    if (r == 0 && !out->options && !(out->options = strdup("")))
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
    if (r == 0 && !out->title[0])
        copy_field(out->title, sizeof(out->title), file, strlen(file));
    if (r < 0)
        img_choice_clear(out);
    if (r < 0 && r != -ENOENT)
        vdk_error_prepend(errp, "entry '%s'", file);
    return r;
}

/* rpm-style: digit runs compare as numbers, letter runs as strings,
   digits above letters, '~' below everything, other characters separate. */
int img_version_cmp(const char *a, const char *b)
{
    for (;;) {
        while (*a && !isalnum((unsigned char)*a) && *a != '~')
            a++;
        while (*b && !isalnum((unsigned char)*b) && *b != '~')
            b++;
        if (*a == '~' || *b == '~') {
            if (*a != '~')
                return 1;
            if (*b != '~')
                return -1;
            a++, b++;
            continue;
        }
        if (!*a || !*b)
            return (*a != 0) - (*b != 0);
        bool da = isdigit((unsigned char)*a), db = isdigit((unsigned char)*b);
        if (da != db)
            return da ? 1 : -1;
        const char *ea = a, *eb = b;
        if (da) {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            ea = a, eb = b;
            while (isdigit((unsigned char)*ea))
                ea++;
            while (isdigit((unsigned char)*eb))
                eb++;
            if (ea - a != eb - b)
                return ea - a < eb - b ? -1 : 1;
        } else {
            while (isalpha((unsigned char)*ea))
                ea++;
            while (isalpha((unsigned char)*eb))
                eb++;
        }
        size_t la = (size_t)(ea - a), lb = (size_t)(eb - b);
        int c = memcmp(a, b, la < lb ? la : lb);
        if (c)
            return c < 0 ? -1 : 1;
        if (la != lb)
            return la < lb ? -1 : 1;
        a = ea, b = eb;
    }
}

static int bls_cmp(const void *pa, const void *pb)
{
    const struct img_choice *a = pa, *b = pb;
    bool ka = a->sort_key[0], kb = b->sort_key[0];
    if (ka != kb)
        return ka ? -1 : 1;
    if (ka) {
        int c = strcmp(a->sort_key, b->sort_key);
        if (c)
            return c;
        if ((c = strcmp(a->machine_id, b->machine_id)))
            return c;
        if ((c = img_version_cmp(b->version, a->version)))
            return c;
    }
    return img_version_cmp(b->file, a->file);
}

void img_bls_sort(struct img_choice *c, int n)
{
    if (n > 1)
        qsort(c, (size_t)n, sizeof(*c), bls_cmp);
}
