/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: option strings (block/options.c).  The input is an option
 * string, parsed with and without an implied key, then validated against
 * every driver's tables and a table of every type, read through the typed
 * getters, split by prefix and serialised back.  It is also given to
 * vdk_object_add() as an --object definition (block/secret.c: data= and
 * base64 decoding; never file=, which would read the host's files).
 *
 * Checked beyond "no crash": a string that parses serialises to one that
 * parses to the same list, and a failed parse always says why.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "vdk/options.h"
#include "vdk/secret.h"
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: key=value pairs split at
   commas (",," is a literal comma), dotted keys, every driver's keys
   worth a try, values of each type, the bounds. */
static const char *const opt_words[] = {
    "driver=", "file.", "file.driver=", "filename=", "file.filename=", "format=", "size=",
    "cluster_size=", "compat=", "lazy_refcounts=", "refcount_bits=", "preallocation=",
    "backing_file=", "backing_fmt=", "encrypt.format=", "encrypt.key-secret=",
    "key-secret=", "data=", "id=", "secret", "base64", "raw", "qcow2", "luks", "vmdk",
    "file", "memory://x", "null-co://", "on", "off", "yes", "no", "true", "false", "1k",
    "64k", "2M", "1.5G", "1T", "8E", "16E", "1Q", "kind=", "count=", "flag=", "name=",
    "metadata", "falloc", "full", ",,", ".", "=",
};
static const size_t opt_bounds[] = { VDK_OPTS_MAX_LEN, 1024, 4096 };
static const struct ft_grammar opt_grammar = {
    ",=.", 0, false, opt_words, sizeof(opt_words) / sizeof(opt_words[0]), opt_bounds, 3,
};
FT_MUTATOR(opt_grammar)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const kinds[] = { "off", "metadata", "falloc", "full", NULL };

static const struct vdk_opt_desc every_type[] = {
    { "size", VDK_OPT_SIZE, "A size", NULL, NULL },
    { "flag", VDK_OPT_BOOL, "A boolean", NULL, NULL },
    { "count", VDK_OPT_NUMBER, "A number", NULL, NULL },
    { "kind", VDK_OPT_ENUM, "An enum", NULL, kinds },
    { "name", VDK_OPT_STRING, "A string", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static void same_list(const struct vdk_opts *a, const struct vdk_opts *b)
{
    if (vdk_opts_count(a) != vdk_opts_count(b))
        abort();
    const char *ka, *va, *kb, *vb;
    for (size_t i = 0; vdk_opts_nth(a, i, &ka, &va); i++) {
        if (!vdk_opts_nth(b, i, &kb, &vb) || strcmp(ka, kb) != 0 || strcmp(va, vb) != 0)
            abort();
    }
}

/*
 * Read keys through every typed getter (errors are expected); the first
 * READ_KEYS only, as lookups are linear and the rest adds time, not paths.
 * The others are marked used with vdk_opts_get.
 */
#define READ_KEYS 64
#define BIG_LIST 128

static void read_typed(struct vdk_opts *o)
{
    const char *k;
    for (size_t i = 0; vdk_opts_nth(o, i, &k, NULL); i++) {
        if (i >= READ_KEYS) {
            (void)vdk_opts_get(o, k);
            continue;
        }
        struct vdk_error *err = NULL;
        uint64_t u;
        bool b;
        char *key = strdup(k); /* getters may not keep our pointer valid */
        if (!key)
            return;
        if (vdk_opts_get_size(o, key, 0, &u, &err) < 0 && !err)
            abort();
        vdk_error_free(err);
        err = NULL;
        if (vdk_opts_get_uint(o, key, 0, &u, &err) < 0 && !err)
            abort();
        vdk_error_free(err);
        err = NULL;
        if (vdk_opts_get_bool(o, key, false, &b, &err) < 0 && !err)
            abort();
        vdk_error_free(err);
        err = NULL;
        int e = vdk_opts_get_enum(o, key, kinds, 0, &err);
        if ((e < 0) != (err != NULL) || e > 3)
            abort();
        vdk_error_free(err);
        free(key);
    }
}

static void one(const char *s, const char *implied)
{
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    if (!o)
        return;
    int r = vdk_opts_parse(o, s, implied, &err);
    if (r < 0) {
        if (!err || !err->msg || !*err->msg || err->code != -r)
            abort();
        vdk_error_free(err);
        vdk_opts_free(o);
        return;
    }
    if (err || vdk_opts_count(o) > VDK_OPTS_MAX_ITEMS)
        abort();

    /* Round trip. */
    char *str = vdk_opts_to_string(o);
    if (str) {
        struct vdk_opts *o2 = vdk_opts_new();
        if (o2) {
            if (vdk_opts_parse(o2, str, NULL, &err) < 0 && strlen(str) <= VDK_OPTS_MAX_LEN)
                abort();
            vdk_error_free(err);
            err = NULL;
            if (strlen(str) <= VDK_OPTS_MAX_LEN)
                same_list(o, o2);
            vdk_opts_free(o2);
        }
        free(str);
    }

    /* Validation against every table we have. */
    for (size_t i = 0; vdk_driver_nth(i); i++) {
        const struct vdk_driver *d = vdk_driver_nth(i);
        const struct vdk_opt_desc *tables[2] = { vdk_driver_open_opts(d),
                                                 vdk_driver_create_opts(d) };
        for (int t = 0; t < 2; t++) {
            if (vdk_opts_validate(o, tables[t], "driver 'fuzz'", &err) < 0 && !err)
                abort();
            vdk_error_free(err);
            err = NULL;
        }
    }
    if (vdk_opts_validate(o, every_type, "driver 'fuzz'", &err) < 0 && !err)
        abort();
    vdk_error_free(err);
    err = NULL;

    /* Lookups are linear, so what follows is quadratic in the item count:
       long lists (the item bound) stop here, they add time, not paths. */
    if (vdk_opts_count(o) > BIG_LIST) {
        vdk_opts_free(o);
        return;
    }

    /* Children's options, then the typed getters on what is left. */
    struct vdk_opts *file = vdk_opts_extract_prefix(o, "file");
    struct vdk_opts *clone = vdk_opts_clone(o);
    read_typed(o);
    if (vdk_opts_check_unused(o, "driver 'fuzz'", &err) < 0)
        abort(); /* every key was read */
    if (vdk_opts_check_unused(file, "driver 'file'", &err) < 0 && vdk_opts_count(file) == 0)
        abort();
    vdk_error_free(err);
    if (clone && vdk_opts_merge(clone, file, "file") == 0 &&
        vdk_opts_count(clone) != vdk_opts_count(o) + vdk_opts_count(file))
        abort();
    vdk_opts_free(clone);
    vdk_opts_free(file);
    vdk_opts_free(o);
}

static void quiet(const char *msg, void *opaque)
{
}

static void object(const char *s)
{
    if (strstr(s, "file"))
        return;
    vdk_set_warning_handler(quiet, NULL);
    struct vdk_error *err = NULL;
    int r = vdk_object_add(s, &err);
    if ((r < 0) != (err != NULL))
        abort();
    vdk_error_free(err);
    err = NULL;
    char *secret = NULL;
    size_t len = 0;
    if (r == 0 && vdk_secret_get("fuzz", &secret, &len, &err) == 0) {
        if (secret[len] != '\0')
            abort();
        vdk_secret_free(secret, len);
    }
    vdk_error_free(err);
    vdk_objects_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Option strings come from command lines: C strings, bounded a little
       above the parser's own limit so that limit is exercised. */
    if (size > VDK_OPTS_MAX_LEN + 16)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    one(s, NULL);
    one(s, "filename");
    object(s);
    free(s);
    return 0;
}
