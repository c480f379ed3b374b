/* SPDX-License-Identifier: MIT */
/*
 * A bounded tar index: POSIX ustar with pax extended headers, GNU long
 * names, and old v7 headers.  Only the names, offsets and sizes of
 * regular files are kept.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/ova.h"

/* Octal field (NUL or space terminated), or GNU base-256 when the top bit
   is set.  -1 on junk. */
static int64_t tar_number(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    if (p[0] & 0x80) {
        if (p[0] != 0x80)
            return -1; /* negative or too large */
        for (size_t i = 1; i < len; i++) {
            if (v >> 55)
                return -1;
            v = v << 8 | p[i];
        }
        return (int64_t)v;
    }
    size_t i = 0;
    while (i < len && p[i] == ' ')
        i++;
    for (; i < len && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60)
            return -1;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    if (i < len && p[i] != 0 && p[i] != ' ')
        return -1;
    return (int64_t)v;
}

int tar_header_parse(const uint8_t h[512], char name[OVA_MAX_NAME], char *type,
                     uint64_t *size)
{
    bool zero = true;
    for (int i = 0; i < 512 && zero; i++)
        zero = h[i] == 0;
    if (zero)
        return 1;
    int64_t sum = tar_number(h + 148, 8);
    uint64_t calc = 0;
    for (int i = 0; i < 512; i++)
        calc += (i >= 148 && i < 156) ? ' ' : h[i];
    if (sum < 0 || (uint64_t)sum != calc)
        return -EINVAL;
    int64_t sz = tar_number(h + 124, 12);
    if (sz < 0)
        return -EINVAL;
    *size = (uint64_t)sz;
    *type = (char)h[156];
    size_t pl = 0;
    if (memcmp(h + 257, "ustar", 5) == 0)
        pl = strnlen((const char *)h + 345, 155);
    size_t nl = strnlen((const char *)h, 100);
    if (pl) {
        memcpy(name, h + 345, pl);
        name[pl] = '/';
        memcpy(name + pl + 1, h, nl);
        name[pl + 1 + nl] = 0;
    } else {
        memcpy(name, h, nl);
        name[nl] = 0;
    }
    return 0;
}

void tar_index_free(struct tar_index *idx)
{
    for (size_t i = 0; i < idx->n; i++)
        free(idx->e[i].name);
    free(idx->e);
    idx->e = NULL;
    idx->n = 0;
}

const struct tar_entry *tar_find(const struct tar_index *idx, const char *name)
{
    for (size_t i = 0; i < idx->n; i++)
        if (strcmp(idx->e[i].name, name) == 0)
            return &idx->e[i];
    return NULL;
}

/* pax records "LEN key=value\n": path and size override the next header. */
static int pax_parse(const char *p, size_t len, char *path, uint64_t *size, bool *has_size)
{
    size_t pos = 0;
    while (pos < len) {
        char *end;
        unsigned long long rl = strtoull(p + pos, &end, 10);
        if (end == p + pos || *end != ' ' || rl == 0 || rl > len - pos)
            return -EINVAL;
        const char *kv = end + 1, *rec_end = p + pos + rl;
        if (rec_end[-1] != '\n' || kv >= rec_end)
            return -EINVAL;
        const char *eq = memchr(kv, '=', (size_t)(rec_end - kv));
        if (!eq)
            return -EINVAL;
        size_t kl = (size_t)(eq - kv), vl = (size_t)(rec_end - 1 - (eq + 1));
        if (kl == 4 && memcmp(kv, "path", 4) == 0) {
            if (vl >= OVA_MAX_NAME)
                return -ENAMETOOLONG;
            memcpy(path, eq + 1, vl);
            path[vl] = 0;
        } else if (kl == 4 && memcmp(kv, "size", 4) == 0) {
            char num[24];
            if (vl == 0 || vl >= sizeof(num))
                return -EINVAL;
            memcpy(num, eq + 1, vl);
            num[vl] = 0;
            *size = strtoull(num, &end, 10);
            if (*end)
                return -EINVAL;
            *has_size = true;
        }
        pos += rl;
    }
    return 0;
}

int tar_index_read(struct vdk_node *file, uint64_t len, struct tar_index *idx,
                   struct vdk_error **errp)
{
    uint8_t h[512];
    char name[OVA_MAX_NAME], pax_path[OVA_MAX_NAME] = "";
    uint64_t pax_size = 0, pos = 0;
    bool has_pax_size = false;
    int r;
    memset(idx, 0, sizeof(*idx));
    for (unsigned hdrs = 0; pos + 512 <= len; hdrs++) {
        if (hdrs > 4 * OVA_MAX_ENTRIES)
            return vdk_error_setf(errp, E2BIG, "tar archive has too many headers");
        if ((r = vdk_pread(file, h, 512, pos, 0)) < 0)
            return vdk_error_setf_errno(errp, r, "cannot read the tar archive");
        char type;
        uint64_t size;
        r = tar_header_parse(h, name, &type, &size);
        if (r == 1)
            break;
        if (r < 0)
            return vdk_error_setf(errp, EINVAL, "bad tar header at offset %" PRIu64, pos);
        uint64_t data = pos + 512;
        if (has_pax_size && (type == '0' || type == 0 || type == '7'))
            size = pax_size;
        if (size > len - data)
            return vdk_error_setf(errp, EINVAL, "tar entry '%s' at offset %" PRIu64 " runs "
                                  "past the end of the archive", name, pos);
        if (type == 'x' || type == 'L') {
            if (size > OVA_MAX_PAX)
                return vdk_error_setf(errp, EFBIG, "tar extended header larger than %u bytes",
                                      OVA_MAX_PAX);
            char *p = malloc(size + 1);
            if (!p)
                return vdk_error_setf(errp, ENOMEM, "out of memory");
            r = size ? vdk_pread(file, p, size, data, 0) : 0;
            p[size] = 0;
            if (r == 0 && type == 'x')
                r = pax_parse(p, size, pax_path, &pax_size, &has_pax_size);
            else if (r == 0) {
                size_t l = strnlen(p, size);
                if (l >= OVA_MAX_NAME)
                    r = -ENAMETOOLONG;
                else
                    memcpy(pax_path, p, l + 1);
            }
            free(p);
            if (r < 0)
                return vdk_error_setf(errp, EINVAL, "bad tar extended header at offset %"
                                      PRIu64, pos);
        } else {
            if ((type == '0' || type == 0 || type == '7')) {
                if (idx->n >= OVA_MAX_ENTRIES)
                    return vdk_error_setf(errp, E2BIG, "tar archive has more than %u files",
                                          OVA_MAX_ENTRIES);
                struct tar_entry *ne = realloc(idx->e, (idx->n + 1) * sizeof(*ne));
                if (!ne)
                    return vdk_error_setf(errp, ENOMEM, "out of memory");
                idx->e = ne;
                const char *nm = pax_path[0] ? pax_path : name;
                if (strncmp(nm, "./", 2) == 0)
                    nm += 2;
                if (!(idx->e[idx->n].name = strdup(nm)))
                    return vdk_error_setf(errp, ENOMEM, "out of memory");
                idx->e[idx->n].offset = data;
                idx->e[idx->n].size = size;
                idx->n++;
            }
            pax_path[0] = 0;
            has_pax_size = false;
        }
        pos = data + vdk_align_up(size, 512);
    }
    return 0;
}
