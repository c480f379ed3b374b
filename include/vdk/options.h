/* SPDX-License-Identifier: MIT */
/*
 * Options: one flat, ordered key=value list.
 *
 * Keys for child nodes carry a dotted prefix ("file.filename=x",
 * "backing.driver=raw", "encrypt.format=luks").  Values are strings; drivers
 * read them typed through an option table (struct vdk_opt_desc), which also
 * generates the help text.  Every key must be consumed by some table: a key
 * nobody knows is an error, never silently ignored (vdk_opts_check_unused()).
 *
 * String syntax accepted by vdk_opts_parse() is qemu's: "k=v,k2=v2", a
 * literal comma in a value is written ",,".  An element without '=' is
 * either the implied key (e.g. "file.raw" with implied key "filename") or,
 * when there is no implied key, a boolean "k" meaning "k=on".
 */
#ifndef VDK_OPTIONS_H
#define VDK_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vdk/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Hard bounds on untrusted option input. */
#define VDK_OPTS_MAX_ITEMS 1024
#define VDK_OPTS_MAX_LEN   (64 * 1024)

struct vdk_opts;

VDK_API struct vdk_opts *vdk_opts_new(void);
VDK_API void vdk_opts_free(struct vdk_opts *o);
VDK_API struct vdk_opts *vdk_opts_clone(const struct vdk_opts *o);

/*
 * Parse "k=v,..." and append to o.  Later duplicates override earlier
 * values.  Returns 0 or -EINVAL (with *errp set) on malformed input
 * (empty key, too long, too many items).
 */
VDK_API int vdk_opts_parse(struct vdk_opts *o, const char *str, const char *implied_key,
                   struct vdk_error **errp);

/* Set (replace) a key.  Returns 0 or -ENOMEM/-EINVAL. */
VDK_API int vdk_opts_set(struct vdk_opts *o, const char *key, const char *value);
/* Set only if the key is absent. */
VDK_API int vdk_opts_set_default(struct vdk_opts *o, const char *key, const char *value);
VDK_API int vdk_opts_del(struct vdk_opts *o, const char *key);

/* Lookup; NULL if absent.  Marks the key as used. */
VDK_API const char *vdk_opts_get(struct vdk_opts *o, const char *key);
/* Lookup without marking used. */
VDK_API const char *vdk_opts_peek(const struct vdk_opts *o, const char *key);
VDK_API bool vdk_opts_has(const struct vdk_opts *o, const char *key);
VDK_API size_t vdk_opts_count(const struct vdk_opts *o);
/* Iterate: returns false past the end. */
VDK_API bool vdk_opts_nth(const struct vdk_opts *o, size_t i, const char **key,
                  const char **value);

/*
 * Move every "prefix.rest" key into a new list as "rest" (prefix given
 * without the dot).  Always returns a list (possibly empty), NULL only on
 * allocation failure.
 */
VDK_API struct vdk_opts *vdk_opts_extract_prefix(struct vdk_opts *o, const char *prefix);

/* Copy all entries of src into dst, prefixing keys with "prefix." if given. */
VDK_API int vdk_opts_merge(struct vdk_opts *dst, const struct vdk_opts *src,
                   const char *prefix);

/* Serialise back to "k=v,..." (commas doubled).  Caller frees. */
VDK_API char *vdk_opts_to_string(const struct vdk_opts *o);

/*
 * Error if any key was never read through vdk_opts_get() (or the typed
 * getters).  `context` names the owner ("driver 'raw'") for the message:
 * "invalid option 'foo' for driver 'raw'".
 */
VDK_API int vdk_opts_check_unused(const struct vdk_opts *o, const char *context,
                          struct vdk_error **errp);

/* ---- typed option tables ---- */

enum vdk_opt_type {
    VDK_OPT_STRING,
    VDK_OPT_BOOL, /* on/off, true/false, yes/no, 1/0 */
    VDK_OPT_SIZE, /* bytes with optional k/M/G/T/P/E suffix (powers of 1024) */
    VDK_OPT_NUMBER,
    VDK_OPT_ENUM, /* one of .values */
};

struct vdk_opt_desc {
    const char *name;
    enum vdk_opt_type type;
    const char *help;
    const char *def_value;       /* shown in help; may be NULL */
    const char *const *values;   /* VDK_OPT_ENUM: NULL-terminated */
};

/* Tables end with an entry whose name is NULL. */
VDK_API const struct vdk_opt_desc *vdk_opt_desc_find(const struct vdk_opt_desc *table,
                                             const char *name);

/*
 * Check every key of `o` that has no dot against `table`: unknown keys and
 * values of the wrong type are errors.  Dotted keys are left for children.
 * Does not mark keys used.
 */
VDK_API int vdk_opts_validate(const struct vdk_opts *o, const struct vdk_opt_desc *table,
                      const char *context, struct vdk_error **errp);

/*
 * Print help in qemu-img's layout, sorted the way qemu-img sorts it (by
 * "name=", so "encrypt.format" before "encrypt"), without defaults:
 *   "Supported options:\n  name=<type>  - help\n"
 * `title` replaces "Supported options:" when not NULL.
 */
VDK_API void vdk_opts_print_help(FILE *out, const char *title,
                         const struct vdk_opt_desc *table);

/*
 * Typed getters: absent key -> *out = def, return 0.  Present but invalid ->
 * -EINVAL with "parameter 'k' expects ..." message.  All mark the key used.
 */
VDK_API int vdk_opts_get_size(struct vdk_opts *o, const char *key, uint64_t def,
                      uint64_t *out, struct vdk_error **errp);
VDK_API int vdk_opts_get_uint(struct vdk_opts *o, const char *key, uint64_t def,
                      uint64_t *out, struct vdk_error **errp);
VDK_API int vdk_opts_get_bool(struct vdk_opts *o, const char *key, bool def, bool *out,
                      struct vdk_error **errp);
/* Returns index into values[] or def_index when absent; -EINVAL otherwise. */
VDK_API int vdk_opts_get_enum(struct vdk_opts *o, const char *key,
                      const char *const *values, int def_index,
                      struct vdk_error **errp);

/* ---- scalar parsers (shared by options and command lines) ---- */

/*
 * Parse a size: decimal digits with an optional fraction and one suffix of
 * b (ignored), k/K, M, G, T, P, E (1024 based).  Rejects negatives, empty
 * strings, unknown suffixes ("1Q"), and anything above INT64_MAX
 * ("99999999T").  Returns 0 or -EINVAL / -ERANGE.
 */
VDK_API int vdk_parse_size(const char *s, uint64_t *out);
/*
 * Unsigned integer in C syntax, no suffix: decimal, 0x hex, or octal with
 * a leading 0 ("010" is 8, "08" is an error), as qemu reads "num" options.
 */
VDK_API int vdk_parse_uint(const char *s, uint64_t *out);
/* on/off, true/false, yes/no, 1/0.  Returns 0 or -EINVAL. */
VDK_API int vdk_parse_bool(const char *s, bool *out);

/* "1 GiB", "512 KiB", "1.5 MiB" like qemu's size_to_str.  Caller frees. */
VDK_API char *vdk_size_to_str(uint64_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* VDK_OPTIONS_H */
