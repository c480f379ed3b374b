/* SPDX-License-Identifier: MIT */
/*
 * VMDK text descriptors: parsing (bounded), probing, and the descriptor
 * qemu-img writes for a new image.
 *
 * Grammar (VMware's technical note, as VMware and qemu write it):
 *   # comment lines and blank lines
 *   key=value                 version, CID (hex), parentCID (hex),
 *                             createType="...", parentFileNameHint="..."
 *   ACCESS SECTORS TYPE ["FILE" [OFFSET]]    one extent per line
 *   ddb.key = "value"         disk database
 * Lines end in \n or \r\n; a NUL ends the text (the embedded area is
 * zero padded).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

static const char *const ext_type_names[] = {
    [VMDK_EXT_FLAT] = "FLAT", [VMDK_EXT_SPARSE] = "SPARSE", [VMDK_EXT_ZERO] = "ZERO",
    [VMDK_EXT_VMFS] = "VMFS", [VMDK_EXT_VMFSSPARSE] = "VMFSSPARSE",
    [VMDK_EXT_SESPARSE] = "SESPARSE",
};

const char *vmdk_ext_type_name(enum vmdk_ext_type t)
{
    return ext_type_names[t];
}

void vmdk_desc_free(struct vmdk_desc *d)
{
    for (size_t i = 0; i < d->n_ext; i++)
        free(d->ext[i].file);
    for (size_t i = 0; i < d->n_ddb; i++) {
        free(d->ddb_keys[i]);
        free(d->ddb_vals[i]);
    }
    free(d->ext);
    free(d->ddb_keys);
    free(d->ddb_vals);
    free(d->create_type);
    free(d->parent_hint);
    memset(d, 0, sizeof(*d));
}

const char *vmdk_desc_ddb(const struct vmdk_desc *d, const char *key)
{
    for (size_t i = 0; i < d->n_ddb; i++)
        if (strcmp(d->ddb_keys[i], key) == 0)
            return d->ddb_vals[i];
    return NULL;
}

static char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Strip surrounding quotes (and trailing blanks) in place. */
static char *unquote(char *v)
{
    v = skip_ws(v);
    size_t l = strlen(v);
    while (l && (v[l - 1] == ' ' || v[l - 1] == '\t'))
        v[--l] = 0;
    if (l >= 2 && v[0] == '"' && v[l - 1] == '"') {
        v[l - 1] = 0;
        v++;
    }
    return v;
}

static int parse_hex32(const char *s, uint32_t *out)
{
    char *end;
    if (!isxdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (errno || *skip_ws(end) || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int parse_u64(char **pp, uint64_t *out)
{
    char *p = skip_ws(*pp), *end;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno)
        return -ERANGE;
    *out = v;
    *pp = end;
    return 0;
}

static int parse_extent(char *line, struct vmdk_desc *d, uint64_t *total,
                        struct vdk_error **errp)
{
    struct vmdk_desc_extent x = { 0 };
    char *p = line;
    size_t al = strcspn(p, " \t");
    if (al == 2 && strncmp(p, "RW", 2) == 0)
        x.access = VMDK_ACC_RW;
    else if (al == 6 && strncmp(p, "RDONLY", 6) == 0)
        x.access = VMDK_ACC_RDONLY;
    else
        x.access = VMDK_ACC_NOACCESS;
    p += al;
    if (parse_u64(&p, &x.sectors) < 0 || x.sectors == 0 || x.sectors > VMDK_MAX_SECTORS)
        return vdk_error_setf(errp, EINVAL, "invalid extent size in descriptor line '%s'",
                              line);
    p = skip_ws(p);
    size_t tl = strcspn(p, " \t");
    bool found = false;
    for (size_t t = 0; t < sizeof(ext_type_names) / sizeof(ext_type_names[0]); t++) {
        if (strlen(ext_type_names[t]) == tl && strncmp(p, ext_type_names[t], tl) == 0) {
            x.type = (enum vmdk_ext_type)t;
            found = true;
        }
    }
    if (!found)
        return vdk_error_setf(errp, ENOTSUP, "unsupported extent type in descriptor line '%s'",
                              line);
    p = skip_ws(p + tl);
    if (x.type != VMDK_EXT_ZERO) {
        if (*p != '"')
            return vdk_error_setf(errp, EINVAL, "extent without a quoted file name in "
                                  "descriptor line '%s'", line);
        char *q = strchr(p + 1, '"');
        if (!q || q == p + 1)
            return vdk_error_setf(errp, EINVAL, "bad extent file name in descriptor "
                                  "line '%s'", line);
        x.file = strndup(p + 1, (size_t)(q - p - 1));
        if (!x.file)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        p = skip_ws(q + 1);
        if (*p) {
            if (x.type != VMDK_EXT_FLAT && x.type != VMDK_EXT_VMFS) {
                free(x.file);
                return vdk_error_setf(errp, EINVAL, "offset on a %s extent in descriptor "
                                      "line '%s'", ext_type_names[x.type], line);
            }
            if (parse_u64(&p, &x.offset) < 0 || *skip_ws(p) ||
                x.offset > VMDK_MAX_SECTORS) {
                free(x.file);
                return vdk_error_setf(errp, EINVAL, "bad extent offset in descriptor "
                                      "line '%s'", line);
            }
        }
    } else if (*p && *p != '"') {
        return vdk_error_setf(errp, EINVAL, "junk after a ZERO extent in descriptor "
                              "line '%s'", line);
    }
    if (*total + x.sectors > VMDK_MAX_SECTORS) {
        free(x.file);
        return vdk_error_setf(errp, EFBIG, "extents add up to more than %llu sectors",
                              (unsigned long long)VMDK_MAX_SECTORS);
    }
    if (d->n_ext >= VMDK_MAX_EXTENTS) {
        free(x.file);
        return vdk_error_setf(errp, E2BIG, "descriptor names more than %u extents",
                              VMDK_MAX_EXTENTS);
    }
    struct vmdk_desc_extent *ne = realloc(d->ext, (d->n_ext + 1) * sizeof(*ne));
    if (!ne) {
        free(x.file);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    d->ext = ne;
    d->ext[d->n_ext++] = x;
    *total += x.sectors;
    return 0;
}

static int add_ddb(struct vmdk_desc *d, const char *k, const char *v)
{
    char **nk = realloc(d->ddb_keys, (d->n_ddb + 1) * sizeof(*nk));
    if (!nk)
        return -ENOMEM;
    d->ddb_keys = nk;
    char **nv = realloc(d->ddb_vals, (d->n_ddb + 1) * sizeof(*nv));
    if (!nv)
        return -ENOMEM;
    d->ddb_vals = nv;
    char *ks = strdup(k), *vs = strdup(v);
    if (!ks || !vs) {
        free(ks);
        free(vs);
        return -ENOMEM;
    }
    d->ddb_keys[d->n_ddb] = ks;
    d->ddb_vals[d->n_ddb++] = vs;
    return 0;
}

static int parse_line(char *line, struct vmdk_desc *d, uint64_t *total,
                      struct vdk_error **errp)
{
    char *p = skip_ws(line);
    if (!*p || *p == '#')
        return 0;
    if (strncmp(p, "RW ", 3) == 0 || strncmp(p, "RW\t", 3) == 0 ||
        strncmp(p, "RDONLY", 6) == 0 || strncmp(p, "NOACCESS", 8) == 0)
        return parse_extent(p, d, total, errp);
    char *eq = strchr(p, '=');
    if (!eq)
        return vdk_error_setf(errp, EINVAL, "invalid descriptor line '%s'", line);
    char *ke = eq;
    while (ke > p && (ke[-1] == ' ' || ke[-1] == '\t'))
        ke--;
    *ke = 0;
    char *v = unquote(eq + 1);
    if (strcmp(p, "version") == 0) {
        if (strcmp(v, "1") && strcmp(v, "2") && strcmp(v, "3"))
            return vdk_error_setf(errp, ENOTSUP, "unsupported descriptor version '%s'", v);
        d->version = v[0] - '0';
    } else if (strcmp(p, "CID") == 0) {
        if (parse_hex32(v, &d->cid) < 0)
            return vdk_error_setf(errp, EINVAL, "invalid CID '%s' in descriptor", v);
    } else if (strcmp(p, "parentCID") == 0) {
        if (parse_hex32(v, &d->parent_cid) < 0)
            return vdk_error_setf(errp, EINVAL, "invalid parentCID '%s' in descriptor", v);
    } else if (strcmp(p, "createType") == 0) {
        free(d->create_type);
        if (!(d->create_type = strdup(v)))
            return vdk_error_setf(errp, ENOMEM, "out of memory");
    } else if (strcmp(p, "parentFileNameHint") == 0) {
        free(d->parent_hint);
        d->parent_hint = *v ? strdup(v) : NULL;
        if (*v && !d->parent_hint)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
    } else if (strncmp(p, "ddb.", 4) == 0) {
        if (d->n_ddb >= 1024)
            return vdk_error_setf(errp, E2BIG, "more than 1024 ddb keys in descriptor");
        if (add_ddb(d, p, v) < 0)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    /* Other keys (encoding, isNativeSnapshot, ...) carry nothing we use. */
    return 0;
}

int vmdk_desc_parse(const char *text, size_t len, struct vmdk_desc *d,
                    struct vdk_error **errp)
{
    memset(d, 0, sizeof(*d));
    d->parent_cid = 0xffffffffu;
    const char *nul = memchr(text, 0, len);
    if (nul)
        len = (size_t)(nul - text);
    if (len > VMDK_MAX_DESC_SIZE)
        return vdk_error_setf(errp, EFBIG, "descriptor larger than %u bytes",
                              VMDK_MAX_DESC_SIZE);
    char line[VMDK_MAX_DESC_LINE + 1];
    uint64_t total = 0;
    size_t pos = 0, lineno = 0;
    int r = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (ll > VMDK_MAX_DESC_LINE) {
            r = vdk_error_setf(errp, EINVAL, "descriptor line %zu longer than %u bytes",
                               lineno, VMDK_MAX_DESC_LINE);
            goto fail;
        }
        memcpy(line, text + pos, ll);
        if (ll && line[ll - 1] == '\r')
            ll--;
        line[ll] = 0;
        pos = nl ? (size_t)(nl - text) + 1 : len;
        if ((r = parse_line(line, d, &total, errp)) < 0)
            goto fail;
    }
    if (!d->version) {
        r = vdk_error_setf(errp, EINVAL, "descriptor has no 'version=' line");
        goto fail;
    }
    if (!d->create_type) {
        r = vdk_error_setf(errp, EINVAL, "descriptor has no createType");
        goto fail;
    }
    if (!d->n_ext) {
        r = vdk_error_setf(errp, EINVAL, "descriptor names no extents");
        goto fail;
    }
    return 0;
fail:
    vmdk_desc_free(d);
    return r;
}

bool vmdk_desc_probe(const uint8_t *buf, size_t len)
{
    /* Comment lines and blank lines, then "version=1|2|3". */
    const char *p = (const char *)buf, *end = p + len;
    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
            p++;
            continue;
        }
        if (*p == ' ' || *p == '\r' || *p == '\n') {
            while (p < end && *p == ' ')
                p++;
            if (p < end && *p == '\r')
                p++;
            if (p == end || *p != '\n')
                return false;
            p++;
            continue;
        }
        static const char *const v[] = { "version=1", "version=2", "version=3" };
        for (int i = 0; i < 3; i++) {
            size_t l = strlen(v[i]);
            if ((size_t)(end - p) > l && memcmp(p, v[i], l) == 0 &&
                (p[l] == '\n' || (p[l] == '\r' && end - p > (long)l + 1 && p[l + 1] == '\n')))
                return true;
        }
        return false;
    }
    return false;
}

char *vmdk_desc_build(const struct vmdk_desc_build *b)
{
    char *out = NULL;
    char hint[4200] = "";
    if (b->parent_hint)
        /* qemu puts the hint where the blank line after createType is */
        snprintf(hint, sizeof(hint), "parentFileNameHint=\"%s\"", b->parent_hint);
    if (asprintf(&out,
                 "# Disk DescriptorFile\n"
                 "version=1\n"
                 "CID=%" PRIx32 "\n"
                 "parentCID=%" PRIx32 "\n"
                 "createType=\"%s\"\n"
                 "%s"
                 "\n"
                 "# Extent description\n"
                 "%s"
                 "\n"
                 "# The Disk Data Base\n"
                 "#DDB\n"
                 "\n"
                 "ddb.virtualHWVersion = \"%s\"\n"
                 "ddb.geometry.cylinders = \"%" PRIu64 "\"\n"
                 "ddb.geometry.heads = \"%u\"\n"
                 "ddb.geometry.sectors = \"63\"\n"
                 "ddb.adapterType = \"%s\"\n"
                 "ddb.toolsVersion = \"%s\"\n",
                 b->cid, b->parent_cid, b->create_type, hint, b->extents, b->hwversion,
                 b->cylinders, b->heads, b->adapter, b->toolsversion) < 0)
        return NULL;
    return out;
}

char *vmdk_desc_set(const char *text, const char *key, const char *value)
{
    size_t kl = strlen(key), tl = strlen(text);
    size_t cap = tl + kl + (value ? strlen(value) : 0) + 8;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    bool done = false;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (!done && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            if (value)
                o += (size_t)sprintf(out + o, "%s=%s\n", key, value);
            done = true;
        } else {
            memcpy(out + o, p, ll);
            o += ll;
            /* A new key goes right after createType (as qemu places the hint). */
            if (!done && value && strncmp(p, "createType=", 11) == 0 &&
                !strstr(text, key)) {
                o += (size_t)sprintf(out + o, "%s=%s\n", key, value);
                done = true;
            }
        }
        p += ll;
    }
    out[o] = 0;
    return out;
}
