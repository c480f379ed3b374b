/* SPDX-License-Identifier: MIT */
/* Human and JSON printing for vdk-img in qemu-img 7.2's layout. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "img.h"
#include "output.h"

int img_parse_output(const char *arg, enum img_output *out)
{
    if (strcmp(arg, "human") == 0)
        *out = IMG_OUTPUT_HUMAN;
    else if (strcmp(arg, "json") == 0)
        *out = IMG_OUTPUT_JSON;
    else
        return img_error("--output must be used with human or json as argument.");
    return 0;
}

/*
 * qemu-img prints object members in the iteration order of its QDict: a
 * 512-bucket hash table walked from bucket 0 up, with the members of one
 * bucket newest first.  The bucket of a key is the tdb string hash (a
 * published public-domain function) mod 512.  Reproducing that order is
 * what makes our JSON byte-identical to qemu-img's.
 */
static unsigned qdict_bucket(const char *key)
{
    uint32_t v = 0x238F13AFu * (uint32_t)strlen(key);
    for (uint32_t i = 0; key[i]; i++)
        v += (uint32_t)(unsigned char)key[i] << (i * 5 % 24);
    return (1103515243u * v + 12345u) % 512u;
}

struct member {
    const char *key;
    struct json_object *val;
    unsigned bucket;
    size_t pos;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return x->pos > y->pos ? -1 : (x->pos < y->pos); /* newest first */
}

/* Members of obj in qemu's order; caller frees.  *count receives the number. */
static struct member *sorted_members(struct json_object *obj, size_t *count)
{
    size_t n = (size_t)json_object_object_length(obj), i = 0;
    struct member *m = calloc(n ? n : 1, sizeof(*m));
    if (!m) {
        *count = 0;
        return NULL;
    }
    json_object_object_foreach(obj, key, val) {
        m[i].key = key;
        m[i].val = val;
        m[i].bucket = qdict_bucket(key);
        m[i].pos = i;
        i++;
    }
    qsort(m, i, sizeof(*m), member_cmp);
    *count = i;
    return m;
}

/* UTF-8 decoding for escapes; invalid bytes come out as U+FFFD like qemu. */
static const unsigned char *utf8_next(const unsigned char *p, uint32_t *cp)
{
    unsigned char c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
            : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 1) {
        *cp = c;
        return p + 1;
    }
    if (len == 0) {
        *cp = 0xFFFD;
        return p + 1;
    }
    uint32_t v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return p + i;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    *cp = (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) ? 0xFFFD : v;
    return p + len;
}

static void print_json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', out);
    while (*p) {
        uint32_t cp;
        p = utf8_next(p, &cp);
        switch (cp) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (cp >= 0x20 && cp < 0x7F) {
                fputc((int)cp, out);
            } else if (cp >= 0x10000) {
                cp -= 0x10000;
                fprintf(out, "\\u%04X\\u%04X", 0xD800 | (cp >> 10), 0xDC00 | (cp & 0x3FF));
            } else {
                fprintf(out, "\\u%04X", cp);
            }
        }
    }
    fputc('"', out);
}

static void newline_indent(FILE *out, int level)
{
    fprintf(out, "\n%*s", level * 4, "");
}

static void print_json(FILE *out, struct json_object *o, int level)
{
    switch (json_object_get_type(o)) {
    case json_type_null:
        fputs("null", out);
        break;
    case json_type_boolean:
        fputs(json_object_get_boolean(o) ? "true" : "false", out);
        break;
    case json_type_int:
        fprintf(out, "%" PRId64, json_object_get_int64(o));
        break;
    case json_type_double:
        fprintf(out, "%.17g", json_object_get_double(o));
        break;
    case json_type_string:
        print_json_string(out, json_object_get_string(o));
        break;
    case json_type_array: {
        size_t n = json_object_array_length(o);
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            newline_indent(out, level + 1);
            print_json(out, json_object_array_get_idx(o, i), level + 1);
        }
        newline_indent(out, level);
        fputc(']', out);
        break;
    }
    case json_type_object: {
        size_t n;
        struct member *m = sorted_members(o, &n);
        fputc('{', out);
        for (size_t i = 0; i < n; i++) {
            if (i)
                fputc(',', out);
            newline_indent(out, level + 1);
            print_json_string(out, m[i].key);
            fputs(": ", out);
            print_json(out, m[i].val, level + 1);
        }
        newline_indent(out, level);
        fputc('}', out);
        free(m);
        break;
    }
    }
}

void img_json_print(FILE *out, struct json_object *obj)
{
    print_json(out, obj, 0);
    fputc('\n', out);
}

static void dump_value(FILE *out, struct json_object *v, int level);

/* A scalar as qemu's human dump shows it. */
static void dump_scalar(FILE *out, struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_boolean:
        fputs(json_object_get_boolean(v) ? "true" : "false", out);
        break;
    case json_type_int:
        fprintf(out, "%" PRId64, json_object_get_int64(v));
        break;
    case json_type_double:
        fprintf(out, "%.17g", json_object_get_double(v));
        break;
    case json_type_string:
        fputs(json_object_get_string(v), out);
        break;
    default:
        fputs("null", out);
        break;
    }
}

static bool is_composite(struct json_object *v)
{
    return json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array);
}

static void dump_value(FILE *out, struct json_object *v, int level)
{
    if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = 0; i < n; i++) {
            struct json_object *e = json_object_array_get_idx(v, i);
            fprintf(out, "%*s[%zu]:", level * 4, "", i);
            if (is_composite(e)) {
                fputc('\n', out);
                dump_value(out, e, level + 1);
            } else {
                fputc(' ', out);
                dump_scalar(out, e);
                fputc('\n', out);
            }
        }
        return;
    }
    size_t n;
    struct member *m = sorted_members(v, &n);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%*s", level * 4, "");
        for (const char *k = m[i].key; *k; k++)
            fputc(*k == '-' ? ' ' : *k, out);
        fputc(':', out);
        if (is_composite(m[i].val)) {
            fputc('\n', out);
            dump_value(out, m[i].val, level + 1);
        } else {
            fputc(' ', out);
            dump_scalar(out, m[i].val);
            fputc('\n', out);
        }
    }
    free(m);
}

void img_print_format_specific(FILE *out, struct json_object *fs)
{
    struct json_object *data = NULL;
    if (!fs || !json_object_object_get_ex(fs, "data", &data) || !is_composite(data))
        return;
    fputs("Format specific information:\n", out);
    dump_value(out, data, 1);
}

/* ---- snapshots ---- */

void img_snapshot_print_header(FILE *out)
{
    fprintf(out, "%-9s %-16s %8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
            "VM CLOCK", "ICOUNT");
}

void img_snapshot_print_row(FILE *out, const struct vdk_snapshot_info *sn)
{
    char date[32] = "", clock[48], icount[24] = "";
    time_t t = (time_t)sn->date_sec;
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    uint64_t secs = sn->vm_clock_nsec / 1000000000u;
    snprintf(clock, sizeof(clock), "%02" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ".%03" PRIu64,
             secs / 3600, (secs / 60) % 60, secs % 60,
             (sn->vm_clock_nsec / 1000000u) % 1000u);
    if (sn->icount != UINT64_MAX)
        snprintf(icount, sizeof(icount), "%" PRIu64, sn->icount);
    char *size = vdk_size_to_str(sn->vm_state_size);
    fprintf(out, "%-9s %-16s %8s%20s%13s%11s\n", sn->id, sn->name ? sn->name : "",
            size ? size : "?", date, clock, icount);
    free(size);
}

struct json_object *img_snapshot_to_json(const struct vdk_snapshot_info *sn)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "id", json_object_new_string(sn->id));
    json_object_object_add(o, "name", json_object_new_string(sn->name ? sn->name : ""));
    json_object_object_add(o, "vm-state-size", json_object_new_int64((int64_t)sn->vm_state_size));
    json_object_object_add(o, "date-sec", json_object_new_int64(sn->date_sec));
    json_object_object_add(o, "date-nsec", json_object_new_int64(sn->date_nsec));
    json_object_object_add(o, "vm-clock-sec",
                           json_object_new_int64((int64_t)(sn->vm_clock_nsec / 1000000000u)));
    json_object_object_add(o, "vm-clock-nsec",
                           json_object_new_int64((int64_t)(sn->vm_clock_nsec % 1000000000u)));
    if (sn->icount != UINT64_MAX)
        json_object_object_add(o, "icount", json_object_new_int64((int64_t)sn->icount));
    return o;
}

/* ---- info ---- */

/*
 * qemu-img's full-backing-filename: the recorded name resolved against the
 * directory of the image that records it (absolute names and URIs as is).
 */
static char *full_backing_name(const char *image, const char *backing)
{
    const char *slash = strrchr(image, '/');
    char *s = NULL;
    if (backing[0] == '/' || vdk_filename_is_remote(backing) || !slash)
        return strdup(backing);
    if (asprintf(&s, "%.*s%s", (int)(slash - image + 1), image, backing) < 0)
        return NULL;
    return s;
}

/* Adds the snapshots of n (if any) to info.  Formats without snapshots
   simply have none. */
static void add_snapshots(struct vdk_node *n, struct json_object *info)
{
    struct vdk_snapshot_info *list = NULL;
    struct vdk_error *err = NULL;
    int count = 0;
    if (vdk_snapshot_list(n, &list, &count, &err) < 0) {
        vdk_error_free(err);
        return;
    }
    if (count > 0) {
        struct json_object *arr = json_object_new_array();
        for (int i = 0; arr && i < count; i++)
            json_object_array_add(arr, img_snapshot_to_json(&list[i]));
        json_object_object_add(info, "snapshots", arr);
    }
    vdk_snapshot_list_free(list, count);
}

struct json_object *img_info_build(struct vdk_node *n, struct vdk_error **errp)
{
    struct vdk_image_info vi = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &vi, errp) < 0)
        return NULL;
    struct json_object *o = json_object_new_object();
    if (!o) {
        vdk_image_info_clear(&vi);
        vdk_error_setf(errp, ENOMEM, "out of memory");
        return NULL;
    }
    const char *fn = vdk_node_filename(n);
    json_object_object_add(o, "filename", json_object_new_string(fn ? fn : ""));
    json_object_object_add(o, "format", json_object_new_string(vi.format));
    /* qemu-img counts lengths in whole 512-byte sectors (a 1000-byte raw
       file is 1024 bytes long to it, and convert copies 1024). */
    uint64_t vsize = vi.virtual_size + (-vi.virtual_size & 511);
    json_object_object_add(o, "virtual-size", json_object_new_int64((int64_t)vsize));
    if (vi.actual_size >= 0)
        json_object_object_add(o, "actual-size", json_object_new_int64(vi.actual_size));
    if (vi.has_dirty_flag)
        json_object_object_add(o, "dirty-flag", json_object_new_boolean(vi.dirty_flag));
    if (vi.cluster_size)
        json_object_object_add(o, "cluster-size", json_object_new_int64(vi.cluster_size));
    if (vi.encrypted)
        json_object_object_add(o, "encrypted", json_object_new_boolean(true));
    const char *bname = vdk_node_backing_name(n);
    if (bname) {
        char *full = full_backing_name(fn ? fn : "", bname);
        json_object_object_add(o, "backing-filename", json_object_new_string(bname));
        if (full)
            json_object_object_add(o, "full-backing-filename", json_object_new_string(full));
        free(full);
        const char *bfmt = vdk_node_backing_format(n);
        if (bfmt)
            json_object_object_add(o, "backing-filename-format", json_object_new_string(bfmt));
    }
    add_snapshots(n, o);
    if (vi.format_specific) {
        struct json_object *fs = json_tokener_parse(vi.format_specific);
        if (fs)
            json_object_object_add(o, "format-specific", fs);
    }
    vdk_image_info_clear(&vi);
    return o;
}

static const char *get_str(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static bool get_int(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return false;
    *out = json_object_get_int64(v);
    return true;
}

static bool get_true(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

void img_info_print_human(FILE *out, struct json_object *info)
{
    int64_t vsize = 0, asize = 0, csize = 0;
    get_int(info, "virtual-size", &vsize);
    char *vs = vdk_size_to_str((uint64_t)vsize);
    char *ds = get_int(info, "actual-size", &asize) ? vdk_size_to_str((uint64_t)asize) : NULL;
    fprintf(out, "image: %s\nfile format: %s\nvirtual size: %s (%" PRId64 " bytes)\n"
                 "disk size: %s\n", get_str(info, "filename"), get_str(info, "format"),
            vs ? vs : "?", vsize, ds ? ds : "unavailable");
    free(vs);
    free(ds);
    if (get_true(info, "encrypted"))
        fputs("encrypted: yes\n", out);
    if (get_int(info, "cluster-size", &csize))
        fprintf(out, "cluster_size: %" PRId64 "\n", csize);
    if (get_true(info, "dirty-flag"))
        fputs("cleanly shut down: no\n", out);
    const char *bf = get_str(info, "backing-filename");
    if (bf) {
        const char *full = get_str(info, "full-backing-filename");
        fprintf(out, "backing file: %s", bf);
        if (!full)
            fputs(" (cannot determine actual path)", out);
        else if (strcmp(full, bf) != 0)
            fprintf(out, " (actual path: %s)", full);
        fputc('\n', out);
        const char *bfmt = get_str(info, "backing-filename-format");
        if (bfmt)
            fprintf(out, "backing file format: %s\n", bfmt);
    }
    struct json_object *snaps;
    if (json_object_object_get_ex(info, "snapshots", &snaps)) {
        fputs("Snapshot list:\n", out);
        img_snapshot_print_header(out);
        size_t n = json_object_array_length(snaps);
        for (size_t i = 0; i < n; i++) {
            struct json_object *s = json_object_array_get_idx(snaps, i);
            struct vdk_snapshot_info sn = { .icount = UINT64_MAX };
            int64_t v = 0, ns = 0;
            snprintf(sn.id, sizeof(sn.id), "%s", get_str(s, "id") ? get_str(s, "id") : "");
            sn.name = (char *)get_str(s, "name");
            if (get_int(s, "vm-state-size", &v))
                sn.vm_state_size = (uint64_t)v;
            if (get_int(s, "date-sec", &v))
                sn.date_sec = (uint32_t)v;
            if (get_int(s, "vm-clock-sec", &v) && get_int(s, "vm-clock-nsec", &ns))
                sn.vm_clock_nsec = (uint64_t)v * 1000000000u + (uint64_t)ns;
            if (get_int(s, "icount", &v))
                sn.icount = (uint64_t)v;
            img_snapshot_print_row(out, &sn);
        }
    }
    struct json_object *fs;
    if (json_object_object_get_ex(info, "format-specific", &fs))
        img_print_format_specific(out, fs);
}
