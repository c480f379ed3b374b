/* SPDX-License-Identifier: MIT */
/*
 * The OVF descriptor's disk list and the OVA manifest.
 *
 * The OVF is read with a small scanner, not an XML library: only the
 * attributes of <File> (References) and <Disk> (DiskSection) elements are
 * used.  A document type declaration or entity declaration is refused, so
 * nothing expands; only the five predefined entities and numeric ASCII
 * references are decoded in attribute values.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "formats/vmdk/ova.h"

void ovf_info_free(struct ovf_info *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->disks[i].href);
        free(o->disks[i].format);
    }
    free(o->disks);
    memset(o, 0, sizeof(*o));
}

struct attrs {
    char *v[8];   /* values of the names below, NULL when absent */
};
enum { A_HREF, A_ID, A_SIZE, A_CAPACITY, A_UNITS, A_DISKID, A_FILEREF, A_FORMAT };
static const char *const attr_names[] = {
    "href", "id", "size", "capacity", "capacityAllocationUnits", "diskId", "fileRef", "format",
};

static void attrs_free(struct attrs *a)
{
    for (int i = 0; i < 8; i++)
        free(a->v[i]);
    memset(a, 0, sizeof(*a));
}

/* Decode an attribute value; NULL on a bad or non-ASCII reference. */
static char *decode(const char *p, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '&') {
            out[o++] = p[i];
            continue;
        }
        const char *semi = memchr(p + i, ';', len - i);
        if (!semi || semi - (p + i) > 8)
            goto bad;
        size_t el = (size_t)(semi - (p + i)) + 1;
        static const struct { const char *e; char c; } ents[] = {
            { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' },
            { "&apos;", '\'' },
        };
        bool ok = false;
        for (size_t k = 0; k < 5 && !ok; k++) {
            if (strlen(ents[k].e) == el && memcmp(p + i, ents[k].e, el) == 0) {
                out[o++] = ents[k].c;
                ok = true;
            }
        }
        if (!ok && el > 3 && p[i + 1] == '#') {
            char *end;
            unsigned long c = p[i + 2] == 'x' ? strtoul(p + i + 3, &end, 16)
                                              : strtoul(p + i + 2, &end, 10);
            if (end != semi || c == 0 || c > 0x7f)
                goto bad;
            out[o++] = (char)c;
            ok = true;
        }
        if (!ok)
            goto bad;
        i += el - 1;
    }
    out[o] = 0;
    return out;
bad:
    free(out);
    return NULL;
}

/* Parse the attributes of a start tag in [p, end); local names only. */
static int parse_attrs(const char *p, const char *end, struct attrs *a)
{
    while (p < end) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p >= end || *p == '/' || *p == '>')
            break;
        const char *n0 = p;
        while (p < end && *p != '=' && !isspace((unsigned char)*p) && *p != '>')
            p++;
        const char *n1 = p;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p >= end || *p != '=')
            return -EINVAL;
        p++;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p >= end || (*p != '"' && *p != '\''))
            return -EINVAL;
        char q = *p++;
        const char *v0 = p;
        while (p < end && *p != q)
            p++;
        if (p >= end)
            return -EINVAL;
        const char *v1 = p++;
        const char *colon = memchr(n0, ':', (size_t)(n1 - n0));
        const char *ln = colon ? colon + 1 : n0;
        for (int i = 0; i < 8; i++) {
            if (strlen(attr_names[i]) == (size_t)(n1 - ln) &&
                memcmp(ln, attr_names[i], (size_t)(n1 - ln)) == 0 && !a->v[i]) {
                if (!(a->v[i] = decode(v0, (size_t)(v1 - v0))))
                    return -EINVAL;
            }
        }
    }
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno || *end ? -EINVAL : 0;
}

/* "byte", "byte * 2^30", "byte * 1024" ... as a multiplier. */
static int parse_units(const char *u, uint64_t *mult)
{
    *mult = 1;
    if (!u)
        return 0;
    while (isspace((unsigned char)*u))
        u++;
    if (strncmp(u, "byte", 4) != 0)
        return -EINVAL;
    u += 4;
    while (isspace((unsigned char)*u))
        u++;
    if (!*u)
        return 0;
    if (*u++ != '*')
        return -EINVAL;
    while (isspace((unsigned char)*u))
        u++;
    char *end;
    unsigned long long base = strtoull(u, &end, 10);
    if (end == u)
        return -EINVAL;
    if (*end == '^') {
        unsigned long long e = strtoull(end + 1, &end, 10);
        if (base != 2 || e > 62)
            return -EINVAL;
        base = 1ull << e;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end || base == 0)
        return -EINVAL;
    *mult = base;
    return 0;
}

struct file_ref { char *id, *href; uint64_t size; };

int ovf_parse(const char *xml, size_t len, struct ovf_info *out, struct vdk_error **errp)
{
    memset(out, 0, sizeof(*out));
    if (len > OVA_MAX_OVF)
        return vdk_error_setf(errp, EFBIG, "OVF descriptor larger than %u bytes", OVA_MAX_OVF);
    struct file_ref *files = NULL;
    size_t n_files = 0;
    struct attrs *disks = NULL;
    size_t n_disks = 0;
    int r = 0;
    const char *p = xml, *end = xml + len;
    while (r == 0 && (p = memchr(p, '<', (size_t)(end - p)))) {
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *c = p + 4;
            while (c + 3 <= end && memcmp(c, "-->", 3) != 0)
                c++;
            if (c + 3 > end)
                break;
            p = c + 3;
            continue;
        }
        if (end - p >= 2 && p[1] == '!') {
            r = vdk_error_setf(errp, ENOTSUP, "OVF descriptor has a document type or entity "
                               "declaration; refused (no entity expansion)");
            break;
        }
        const char *gt = memchr(p, '>', (size_t)(end - p));
        if (!gt)
            break;
        const char *n0 = p + 1, *n1 = n0;
        while (n1 < gt && !isspace((unsigned char)*n1) && *n1 != '/')
            n1++;
        const char *colon = memchr(n0, ':', (size_t)(n1 - n0));
        const char *ln = colon ? colon + 1 : n0;
        size_t ll = (size_t)(n1 - ln);
        bool is_file = ll == 4 && memcmp(ln, "File", 4) == 0;
        bool is_disk = ll == 4 && memcmp(ln, "Disk", 4) == 0;
        if (is_file || is_disk) {
            struct attrs a = { 0 };
            if (parse_attrs(n1, gt, &a) < 0) {
                attrs_free(&a);
                r = vdk_error_setf(errp, EINVAL, "bad attributes in an OVF <%.*s> element",
                                   (int)ll, ln);
                break;
            }
            if (is_file) {
                struct file_ref *nf = n_files < OVA_MAX_DISKS * 4
                                          ? realloc(files, (n_files + 1) * sizeof(*nf)) : NULL;
                if (!nf) {
                    attrs_free(&a);
                    r = vdk_error_setf(errp, E2BIG, "too many files in the OVF");
                    break;
                }
                files = nf;
                files[n_files].id = a.v[A_ID];
                files[n_files].href = a.v[A_HREF];
                a.v[A_ID] = a.v[A_HREF] = NULL;
                if (parse_u64(a.v[A_SIZE], &files[n_files].size) < 0)
                    files[n_files].size = 0;
                n_files++;
                attrs_free(&a);
            } else {
                struct attrs *nd = n_disks < OVA_MAX_DISKS
                                       ? realloc(disks, (n_disks + 1) * sizeof(*nd)) : NULL;
                if (!nd) {
                    attrs_free(&a);
                    r = vdk_error_setf(errp, E2BIG, "more than %u disks in the OVF",
                                       OVA_MAX_DISKS);
                    break;
                }
                disks = nd;
                disks[n_disks++] = a;
            }
        }
        p = gt + 1;
    }
    if (r == 0 && n_disks && !(out->disks = calloc(n_disks, sizeof(*out->disks))))
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
    for (size_t i = 0; r == 0 && i < n_disks; i++) {
        struct ovf_disk *d = &out->disks[out->n];
        uint64_t cap, mult;
        if (parse_u64(disks[i].v[A_CAPACITY], &cap) < 0 ||
            parse_units(disks[i].v[A_UNITS], &mult) < 0 || (mult && cap > UINT64_MAX / mult)) {
            r = vdk_error_setf(errp, EINVAL, "OVF disk %zu has a bad capacity", i + 1);
            break;
        }
        d->capacity = cap * mult;
        for (size_t k = 0; r == 0 && k < n_files && disks[i].v[A_FILEREF]; k++) {
            if (!files[k].id || strcmp(files[k].id, disks[i].v[A_FILEREF]) != 0 ||
                !files[k].href)
                continue;
            /* File ids are unique in a valid OVF: which of two would be
               the disk's cannot be told. */
            if (d->href)
                r = vdk_error_setf(errp, EINVAL, "OVF file id '%s' is listed more than once",
                                   files[k].id);
            else if (!(d->href = strdup(files[k].href)))
                r = vdk_error_setf(errp, ENOMEM, "out of memory");
            d->file_size = files[k].size;
        }
        if (r < 0) {
            free(d->href);   /* not yet counted in out->n */
            d->href = NULL;
            break;
        }
        d->format = disks[i].v[A_FORMAT];
        disks[i].v[A_FORMAT] = NULL;
        out->n++;
    }
    for (size_t i = 0; i < n_files; i++) {
        free(files[i].id);
        free(files[i].href);
    }
    free(files);
    for (size_t i = 0; i < n_disks; i++)
        attrs_free(&disks[i]);
    free(disks);
    if (r < 0)
        ovf_info_free(out);
    else if (!out->n)
        r = vdk_error_setf(errp, EINVAL, "the OVF descriptor lists no disks");
    return r;
}

/* Digest of an archive member, as lower-case hex. */
static int digest_entry(struct vdk_node *file, const struct tar_entry *e, const EVP_MD *md,
                        char *hex)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1u << 20);
    int r = ctx && buf && EVP_DigestInit_ex(ctx, md, NULL) == 1 ? 0 : -ENOMEM;
    for (uint64_t o = 0; r == 0 && o < e->size;) {
        uint64_t c = vdk_min_u64(e->size - o, 1u << 20);
        r = vdk_pread(file, buf, c, e->offset + o, 0);
        if (r == 0 && EVP_DigestUpdate(ctx, buf, c) != 1)
            r = -EIO;
        o += c;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if (r == 0 && EVP_DigestFinal_ex(ctx, d, &dl) != 1)
        r = -EIO;
    for (unsigned i = 0; r == 0 && i < dl; i++)
        sprintf(hex + 2 * i, "%02x", d[i]);
    EVP_MD_CTX_free(ctx);
    free(buf);
    return r;
}

int ova_manifest_verify(struct vdk_node *file, const struct tar_index *idx,
                        const char *mf, size_t len, struct vdk_error **errp)
{
    size_t pos = 0;
    int checked = 0;
    while (pos < len) {
        const char *l = mf + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - l) : len - pos;
        pos += ll + 1;
        char line[OVA_MAX_NAME + 256];
        if (ll == 0 || (ll == 1 && l[0] == '\r'))
            continue;
        if (ll >= sizeof(line))
            return vdk_error_setf(errp, EINVAL, "manifest line too long");
        memcpy(line, l, ll);
        line[ll] = 0;
        if (ll && line[ll - 1] == '\r')
            line[ll - 1] = 0;
        char *open = strchr(line, '('), *close = strrchr(line, ')');
        char *eq = close ? strchr(close, '=') : NULL;
        if (!open || !close || !eq || close < open)
            return vdk_error_setf(errp, EINVAL, "bad manifest line '%s'", line);
        *open = 0;
        *close = 0;
        const EVP_MD *md = strcasecmp(line, "SHA1") == 0 ? EVP_sha1()
                           : strcasecmp(line, "SHA256") == 0 ? EVP_sha256()
                           : strcasecmp(line, "SHA512") == 0 ? EVP_sha512() : NULL;
        if (!md)
            return vdk_error_setf(errp, ENOTSUP, "manifest digest '%s' is not supported", line);
        const char *name = open + 1;
        char *want = eq + 1;
        while (*want == ' ')
            want++;
        const struct tar_entry *e = tar_find(idx, name);
        if (!e)
            return vdk_error_setf(errp, ENOENT, "manifest names '%s', which the OVA does not "
                                  "hold", name);
        char got[2 * EVP_MAX_MD_SIZE + 1];
        int r = digest_entry(file, e, md, got);
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot hash '%s'", name);
        if (strcasecmp(got, want) != 0)
            return vdk_error_setf(errp, EINVAL, "%s digest of '%s' does not match the manifest "
                                  "(%s, manifest says %s)", line, name, got, want);
        checked++;
    }
    if (!checked)
        return vdk_error_setf(errp, EINVAL, "the manifest lists no digests");
    return 0;
}
