/* SPDX-License-Identifier: MIT */
/*
 * Partition tables: GPT (UEFI spec, chapter 5: protective MBR, header at
 * LBA 1 with CRC32 of header and entry array, backup header at the last
 * LBA) and MBR with extended/logical partitions (EBR chains).  512- and
 * 4096-byte sectors for GPT, 512 for MBR.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "guest-boot/mem.h"
#include "guest-boot/image/image.h"

#define MBR_SIG_OFF 510
#define MBR_TABLE 0x1be
#define MBR_DISK_SIG 0x1b8
#define MBR_TYPE_GPT 0xee

#define GPT_HDR_MIN 92

static int add_part(struct img_ptable *t, unsigned number, uint64_t start,
                    uint64_t size, struct vdk_error **errp)
{
    if (t->n == IMG_MAX_PARTS)
        return vdk_error_setf(errp, EINVAL, "more than %d partitions",
                              IMG_MAX_PARTS);
    struct img_part *p = &t->part[t->n++];
    memset(p, 0, sizeof(*p));
    p->number = number;
    p->start = start;
    p->size = size;
    return 0;
}

static int cmp_start(const void *a, const void *b)
{
    const struct img_part *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_number(const void *a, const void *b)
{
    const struct img_part *x = a, *y = b;
    return (x->number > y->number) - (x->number < y->number);
}

/* Partitions must lie inside the disk and not overlap each other. */
static int check_layout(struct img_ptable *t, uint64_t disk_size,
                        struct vdk_error **errp)
{
    for (int i = 0; i < t->n; i++) {
        const struct img_part *p = &t->part[i];
        if (p->size == 0 || p->start > disk_size ||
            p->size > disk_size - p->start)
            return vdk_error_setf(errp, EINVAL,
                                  "partition %u (bytes %llu+%llu) lies outside "
                                  "the disk (%llu bytes)", p->number,
                                  (unsigned long long)p->start,
                                  (unsigned long long)p->size,
                                  (unsigned long long)disk_size);
    }
    qsort(t->part, (size_t)t->n, sizeof(t->part[0]), cmp_start);
    for (int i = 1; i < t->n; i++) {
        const struct img_part *a = &t->part[i - 1], *b = &t->part[i];
        if (b->start < a->start + a->size)
            return vdk_error_setf(errp, EINVAL, "partitions %u and %u overlap",
                                  a->number, b->number);
    }
    qsort(t->part, (size_t)t->n, sizeof(t->part[0]), cmp_number);
    return 0;
}

static void guid_str(char *s, size_t n, const uint8_t g[16])
{
    snprintf(s, n, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             (unsigned)get_le32(g), get_le16(g + 4), get_le16(g + 6),
             g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* ---- GPT ---- */

struct gpt_hdr {
    uint64_t my_lba, first_usable, last_usable, entries_lba;
    uint32_t nentries, entry_size, entries_crc;
};

/* Check the header at `lba`; 0 or -EINVAL with *why set. */
static int gpt_header(const struct img_disk *d, uint32_t ss, uint64_t lba,
                      struct gpt_hdr *h, const char **why)
{
    uint8_t buf[4096];
    uint64_t nlba = d->size / ss;
    if (lba >= nlba || d->read(d->opaque, buf, ss, lba * ss) < 0) {
        *why = "cannot be read";
        return -EINVAL;
    }
    if (memcmp(buf, "EFI PART", 8)) {
        *why = "has no signature";
        return -EINVAL;
    }
    uint32_t hsize = get_le32(buf + 12);
    if (hsize < GPT_HDR_MIN || hsize > ss) {
        *why = "has a bad header size";
        return -EINVAL;
    }
    uint32_t crc = get_le32(buf + 16);
    memset(buf + 16, 0, 4);
    if ((uint32_t)crc32(0, buf, hsize) != crc) {
        *why = "has a bad CRC";
        return -EINVAL;
    }
    h->my_lba = get_le64(buf + 24);
    h->first_usable = get_le64(buf + 40);
    h->last_usable = get_le64(buf + 48);
    h->entries_lba = get_le64(buf + 72);
    h->nentries = get_le32(buf + 80);
    h->entry_size = get_le32(buf + 84);
    h->entries_crc = get_le32(buf + 88);
    if (h->my_lba != lba) {
        *why = "names the wrong location";
        return -EINVAL;
    }
    if (h->entry_size < 128 || h->entry_size % 8 ||
        h->nentries > IMG_GPT_ENTRIES_MAX ||
        (uint64_t)h->nentries * h->entry_size > IMG_GPT_ARRAY_MAX) {
        *why = "has a bad entry count or size";
        return -EINVAL;
    }
    uint64_t array_lbas = ((uint64_t)h->nentries * h->entry_size + ss - 1) / ss;
    if (h->entries_lba < 1 || h->entries_lba >= nlba ||
        array_lbas > nlba - h->entries_lba ||
        h->first_usable > h->last_usable || h->last_usable >= nlba) {
        *why = "points outside the disk";
        return -EINVAL;
    }
    return 0;
}

static int gpt_entries(const struct img_disk *d, uint32_t ss,
                       const struct gpt_hdr *h, struct img_ptable *t,
                       const char **why, struct vdk_error **errp)
{
    size_t len = (size_t)h->nentries * h->entry_size;
    uint8_t *a = malloc(len ? len : 1);
    if (!a)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if (len && d->read(d->opaque, a, len, h->entries_lba * ss) < 0) {
        free(a);
        *why = "entry array cannot be read";
        return -EINVAL;
    }
    if ((uint32_t)crc32(0, a, (uInt)len) != h->entries_crc) {
        free(a);
        *why = "entry array has a bad CRC";
        return -EINVAL;
    }
    static const uint8_t zero[16];
    t->n = 0;
    int r = 0;
    for (uint32_t i = 0; i < h->nentries && r == 0; i++) {
        const uint8_t *e = a + (size_t)i * h->entry_size;
        if (!memcmp(e, zero, 16))
            continue;
        uint64_t first = get_le64(e + 32), last = get_le64(e + 40);
        if (first > last || first < h->first_usable || last > h->last_usable) {
            r = vdk_error_setf(errp, EINVAL, "GPT partition %u (sectors "
                               "%llu-%llu) lies outside the usable area", i + 1,
                               (unsigned long long)first,
                               (unsigned long long)last);
            break;
        }
        r = add_part(t, i + 1, first * ss, (last - first + 1) * ss, errp);
        if (r == 0) {
            struct img_part *p = &t->part[t->n - 1];
            memcpy(p->type_guid, e, 16);
            guid_str(p->uuid, sizeof(p->uuid), e + 16);
        }
    }
    free(a);
    return r;
}

static int gpt_scan(const struct img_disk *d, uint32_t ss,
                    struct img_ptable *t, struct vdk_error **errp)
{
    struct gpt_hdr h;
    const char *why1 = NULL, *why2 = NULL;
    t->kind = IMG_PT_GPT;
    if (gpt_header(d, ss, 1, &h, &why1) == 0) {
        int r = gpt_entries(d, ss, &h, t, &why1, errp);
        if (r == 0 || why1 == NULL)
            return r;
    }
    uint64_t last = d->size / ss - 1;
    if (gpt_header(d, ss, last, &h, &why2) == 0) {
        int r = gpt_entries(d, ss, &h, t, &why2, errp);
        if (r == 0) {
            t->used_backup = true;
            snprintf(t->note, sizeof(t->note),
                     "primary GPT header %s; using the backup", why1);
        }
        if (r == 0 || why2 == NULL)
            return r;
    }
    return vdk_error_setf(errp, EINVAL, "GPT damaged: primary %s, backup %s",
                          why1, why2);
}

/* ---- MBR ---- */

static bool mbr_entry_ok(const uint8_t *e)
{
    return e[0] == 0 || e[0] == 0x80;
}

static bool is_extended(uint8_t type)
{
    return type == 0x05 || type == 0x0f || type == 0x85;
}

static int mbr_logical(const struct img_disk *d, struct img_ptable *t,
                       uint64_t ext_start, uint64_t ext_size, uint32_t sig,
                       struct vdk_error **errp)
{
    uint64_t ebr = ext_start;
    unsigned number = 5;
    for (int i = 0;; i++) {
        uint8_t s[512];
        if (i == IMG_MBR_LOGICAL_MAX)
            return vdk_error_setf(errp, EINVAL, "MBR: more than %d logical "
                                  "partitions (a loop in the EBR chain?)",
                                  IMG_MBR_LOGICAL_MAX);
        if (d->read(d->opaque, s, 512, ebr * 512) < 0 ||
            s[MBR_SIG_OFF] != 0x55 || s[MBR_SIG_OFF + 1] != 0xaa)
            return vdk_error_setf(errp, EINVAL, "MBR: extended boot record at "
                                  "sector %llu is damaged",
                                  (unsigned long long)ebr);
        const uint8_t *e0 = s + MBR_TABLE, *e1 = e0 + 16;
        uint64_t rel = get_le32(e0 + 8), cnt = get_le32(e0 + 12);
        if (e0[4] && cnt) {
            uint64_t start = ebr + rel;
            if (start + cnt > ext_start + ext_size)
                return vdk_error_setf(errp, EINVAL, "MBR: logical partition %u "
                                      "lies outside its extended partition",
                                      number);
            int r = add_part(t, number, start * 512, cnt * 512, errp);
            if (r < 0)
                return r;
            struct img_part *p = &t->part[t->n - 1];
            p->mbr_type = e0[4];
            if (sig)
                snprintf(p->uuid, sizeof(p->uuid), "%08x-%02x", sig, number);
            number++;
        }
        if (!is_extended(e1[4]))
            return 0;
        uint64_t next = ext_start + get_le32(e1 + 8);
        if (next <= ebr || next >= ext_start + ext_size)
            return vdk_error_setf(errp, EINVAL, "MBR: extended boot record "
                                  "chain points backwards or outside");
        ebr = next;
    }
}

/* 1: this is an MBR we scanned; 0: sector 0 is not a partition table. */
static int mbr_scan(const struct img_disk *d, const uint8_t *s,
                    struct img_ptable *t, struct vdk_error **errp)
{
    uint64_t nsec = d->size / 512;
    uint32_t sig = get_le32(s + MBR_DISK_SIG);
    for (int i = 0; i < 4; i++)
        if (!mbr_entry_ok(s + MBR_TABLE + 16 * i))
            return 0;     /* boot code of a filesystem, not a table */
    t->kind = IMG_PT_MBR;
    bool ext_seen = false;
    for (int i = 0; i < 4; i++) {
        const uint8_t *e = s + MBR_TABLE + 16 * i;
        uint64_t start = get_le32(e + 8), cnt = get_le32(e + 12);
        if (!e[4] || !cnt)
            continue;
        if (start >= nsec || cnt > nsec - start)
            return vdk_error_setf(errp, EINVAL, "partition %d (sectors "
                                  "%llu+%llu) lies outside the disk", i + 1,
                                  (unsigned long long)start,
                                  (unsigned long long)cnt);
        if (is_extended(e[4])) {
            if (ext_seen)
                return vdk_error_setf(errp, EINVAL,
                                      "MBR: more than one extended partition");
            ext_seen = true;
            int r = mbr_logical(d, t, start, cnt, sig, errp);
            if (r < 0)
                return r;
            continue;
        }
        int r = add_part(t, (unsigned)i + 1, start * 512, cnt * 512, errp);
        if (r < 0)
            return r;
        struct img_part *p = &t->part[t->n - 1];
        p->mbr_type = e[4];
        if (sig)
            snprintf(p->uuid, sizeof(p->uuid), "%08x-%02x", sig, i + 1);
    }
    return 1;
}

int img_part_scan(const struct img_disk *d, struct img_ptable *t,
                  struct vdk_error **errp)
{
    uint8_t s[512];
    memset(t, 0, sizeof(*t));
    if (d->size < 512 || d->read(d->opaque, s, 512, 0) < 0)
        return vdk_error_setf(errp, EIO, "cannot read the first sector");
    int r = 0;
    if (s[MBR_SIG_OFF] == 0x55 && s[MBR_SIG_OFF + 1] == 0xaa) {
        bool gpt = false;
        for (int i = 0; i < 4; i++)
            if (s[MBR_TABLE + 16 * i + 4] == MBR_TYPE_GPT)
                gpt = true;
        if (gpt) {
            /* The sector size is whichever one has "EFI PART" at LBA 1
               (either copy damaged: 512, the common case). */
            uint8_t sig[8];
            uint32_t ss = 512;
            if (d->size >= 8192 && d->read(d->opaque, sig, 8, 4096) == 0 &&
                !memcmp(sig, "EFI PART", 8) &&
                (d->read(d->opaque, sig, 8, 512) < 0 ||
                 memcmp(sig, "EFI PART", 8)))
                ss = 4096;
            if (d->size / ss < 3)
                return vdk_error_setf(errp, EINVAL, "GPT disk too small");
            r = gpt_scan(d, ss, t, errp);
        } else {
            r = mbr_scan(d, s, t, errp);
            if (r == 1) {
                r = 0;
            } else if (r == 0) {
                t->kind = IMG_PT_NONE;
                t->n = 0;
            }
        }
        if (r < 0)
            return r;
    }
    if (t->kind == IMG_PT_NONE)
        return add_part(t, 0, 0, d->size, errp);
    return check_layout(t, d->size, errp);
}
