/* SPDX-License-Identifier: MIT */
/*
 * Probing: which driver opens an image whose format the user did not give.
 *
 * Every format driver with a probe callback scores the first bytes of the
 * file (and, with probe_tail, its last 512 bytes); the highest score wins,
 * as in QEMU.  After the drivers, a table of formats vdk recognises but has
 * no driver for is consulted with the same scores: a recognised format that
 * beats every driver (raw scores 1) is refused with an error naming it, so
 * that a VMDK, say, is never copied as if its container bytes were the disk.
 * A driver that lands for one of these formats takes over simply by being in
 * the driver table: it wins ties against the table.
 *
 * Magics follow the formats' specifications and what qemu-img 7.2 probes.
 * A damaged header keeps its magic, so it is refused or handed to its
 * driver (whose open then reports the damage), never demoted to raw.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"

#define PROBE_HEAD_BYTES VDK_PROBE_BYTES
#define PROBE_TAIL_BYTES 512

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static bool has_prefix(const uint8_t *buf, size_t len, const void *magic, size_t mlen)
{
    return len >= mlen && memcmp(buf, magic, mlen) == 0;
}

/* What a probe sees: the head and tail of the file, and its name. */
struct probe_input {
    const uint8_t *head;
    size_t head_len;
    const uint8_t *tail; /* the last tail_len bytes of the file */
    size_t tail_len;
    const char *filename;
};

/* qcow version 1; versions 2 and up belong to the qcow2 driver. */
static int known_qcow(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "QFI\xfb", 4) && in->head_len >= 8 &&
           be32(in->head + 4) == 1 ? 100 : 0;
}

static int known_qed(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "QED\0", 4) ? 100 : 0;
}

/* Sparse extent headers: "KDMV" (hosted, version 1-3) and "COWD" (ESX). */
static int known_vmdk_sparse(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "KDMV", 4) ||
           has_prefix(in->head, in->head_len, "COWD", 4) ? 100 : 0;
}

/*
 * A text descriptor: comment lines ('#') and blank lines, then
 * "version=1", "2" or "3" on a line of its own (QEMU's rule, which also
 * accepts CRLF line ends).
 */
static int known_vmdk_descriptor(const struct probe_input *in)
{
    const char *p = (const char *)in->head, *end = p + in->head_len;
    while (p < end) {
        if (*p == '#') {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl)
                return 0;
            p = nl + 1;
            continue;
        }
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t'))
            q++;
        if (q < end && *q == '\r')
            q++;
        if (q < end && *q == '\n') { /* blank line */
            p = q + 1;
            continue;
        }
        if (end - p < 10 || memcmp(p, "version=", 8) != 0 || p[8] < '1' || p[8] > '3')
            return 0;
        return p[9] == '\n' || (p[9] == '\r' && end - p >= 11 && p[10] == '\n') ? 100 : 0;
    }
    return 0;
}

static int known_vhdx(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "vhdxfile", 8) ? 100 : 0;
}

/* VirtualBox: the signature 0xbeda107f (little-endian) at offset 0x40. */
static int known_vdi(const struct probe_input *in)
{
    return in->head_len >= 0x44 && le32(in->head + 0x40) == 0xbeda107f ? 100 : 0;
}

static int known_parallels(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "WithoutFreeSpace", 16) ||
           has_prefix(in->head, in->head_len, "WithouFreSpacExt", 16) ? 100 : 0;
}

static int known_bochs(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "Bochs Virtual HD Image", 23) ? 100 : 0;
}

/* cloop V2.0 starts with a shell preamble; QEMU scores it 2. */
static int known_cloop(const struct probe_input *in)
{
    static const char preamble[] = "#!/bin/sh\n#V2.0 Format\n"
                                   "modprobe cloop file=$0 && mount -r -t iso9660 "
                                   "/dev/cloop $1\n";
    return has_prefix(in->head, in->head_len, preamble, sizeof(preamble) - 1) ? 2 : 0;
}

/*
 * UDIF (dmg): a 512-byte "koly" trailer at the end, version 4.  QEMU goes
 * by the name alone (score 2 for "*.dmg"), so a file so named is refused
 * too, as qemu-img refuses it.
 */
static int known_dmg(const struct probe_input *in)
{
    if (in->tail_len == PROBE_TAIL_BYTES && has_prefix(in->tail, in->tail_len, "koly", 4) &&
        be32(in->tail + 4) == 4 && be32(in->tail + 8) == 512)
        return 100;
    size_t n = in->filename ? strlen(in->filename) : 0;
    return n > 4 && strcmp(in->filename + n - 4, ".dmg") == 0 ? 2 : 0;
}

/* LUKS (any version) when no luks driver is built in. */
static int known_luks(const struct probe_input *in)
{
    return has_prefix(in->head, in->head_len, "LUKS\xba\xbe", 6) ? 100 : 0;
}

struct known_format {
    const char *what;   /* for "'x' is a <what> image" */
    int (*score)(const struct probe_input *in);
    const char *driver; /* vdk's driver for it, whose probe declined */
};

static const struct known_format known_formats[] = {
    { "qcow (version 1)", known_qcow },
    { "QED", known_qed },
    { "VMDK", known_vmdk_sparse, "vmdk" },
    { "VMDK", known_vmdk_descriptor, "vmdk" },
    { "VHDX", known_vhdx, "vhdx" },
    { "VDI", known_vdi, "vdi" },
    { "Parallels", known_parallels, "parallels" },
    { "Bochs", known_bochs },
    { "cloop", known_cloop },
    { "DMG", known_dmg },
    { "LUKS", known_luks },
};

/* The winner for `in`: the best-scoring driver, or NULL with *known set
   when a format vdk has no driver for scores higher. */
static const struct vdk_driver *pick(const struct probe_input *in, uint64_t len,
                                     const struct known_format **known_out)
{
    const struct vdk_driver *best = NULL;
    int best_score = 0;
    for (size_t i = 0; vdk_driver_nth(i); i++) {
        const struct vdk_driver *d = vdk_driver_nth(i);
        if (d->kind != VDK_DRV_FORMAT)
            continue;
        int s = d->probe ? d->probe(in->head, in->head_len, in->filename) : 0;
        if (d->probe_tail && in->tail_len) {
            int t = d->probe_tail(in->tail, in->tail_len, (uint64_t)len);
            s = t > s ? t : s;
        }
        if (s > best_score) {
            best_score = s;
            best = d;
        }
    }
    const struct known_format *known = NULL;
    for (size_t i = 0; i < sizeof(known_formats) / sizeof(known_formats[0]); i++) {
        int s = known_formats[i].score(in);
        if (s > best_score) {
            best_score = s;
            known = &known_formats[i];
        }
    }
    *known_out = known;
    return known ? NULL : best;
}

int vdk_probe_format(struct vdk_node *file, const struct vdk_driver **out,
                     struct vdk_error **errp)
{
    int64_t len = vdk_get_length(file);
    if (len < 0)
        return vdk_error_setf_errno(errp, (int)len, "cannot get the length of '%s'",
                                    file->filename);
    uint8_t *head = calloc(1, PROBE_HEAD_BYTES), tail[PROBE_TAIL_BYTES];
    if (!head)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    struct probe_input in = {
        .head = head,
        .head_len = (size_t)vdk_min_u64((uint64_t)len, PROBE_HEAD_BYTES),
        .tail = tail,
        .tail_len = (uint64_t)len >= PROBE_TAIL_BYTES ? PROBE_TAIL_BYTES : 0,
        .filename = file->filename,
    };
    int r = in.head_len ? vdk_pread(file, head, in.head_len, 0, 0) : 0;
    if (r >= 0 && in.tail_len)
        r = vdk_pread(file, tail, in.tail_len, (uint64_t)len - in.tail_len, 0);
    if (r < 0) {
        free(head);
        return vdk_error_setf_errno(errp, r, "cannot read '%s' to probe its format",
                                    file->filename);
    }

    const struct known_format *known = NULL;
    const struct vdk_driver *best = pick(&in, (uint64_t)len, &known);
    free(head);
    if (known && known->driver && vdk_driver_find(known->driver))
        return vdk_error_setf(errp, EINVAL, "'%s' has the magic of a %s image but not a "
                              "valid %s header; give -f %s to see what is wrong",
                              file->filename, known->what, known->what, known->driver);
    if (known)
        return vdk_error_setf(errp, ENOTSUP, "'%s' is a %s image, which vdk cannot open yet",
                              file->filename, known->what);
    if (!best)
        return vdk_error_setf(errp, EINVAL, "could not determine the format of '%s'",
                              file->filename);
    *out = best;
    return 0;
}

bool vdk_probe_head_is_raw(const uint8_t *head, size_t len, const char *filename)
{
    struct probe_input in = { .head = head, .head_len = len, .filename = filename };
    const struct known_format *known = NULL;
    const struct vdk_driver *best = pick(&in, len, &known);
    return !known && (!best || best == &vdk_driver_raw);
}
