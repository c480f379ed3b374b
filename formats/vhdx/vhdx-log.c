/* SPDX-License-Identifier: MIT */
/*
 * The VHDX log: finding the active sequence, replaying it (in place, or
 * in memory for read-only opens), and writing metadata updates through it.
 *
 * Reading: the log (at most VHDX_MAX_LOG bytes) is read whole.  Every
 * 4 KiB position holding an entry whose signature, CRC-32C over the whole
 * entry, log GUID, descriptors and data-sector sequence numbers hold is a
 * candidate.  The active sequence is the candidate with the highest
 * sequence number whose chain, from the entry its tail names, runs
 * through entries with consecutive sequence numbers up to it.  Entries
 * may not target the file identifier, the headers or the log itself.
 *
 * Writing: each update is one entry whose tail is itself (everything
 * before it was applied and flushed), written after the log GUID is
 * recorded in the header; then flushed, applied in place, flushed.  An
 * entry that does not fit before the end of the log starts at 0.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"

#define LS VHDX_LOG_SECTOR

struct log_entry {
    uint32_t pos, len, tail, count;
    uint64_t seq, flushed, last;
    bool ok;
};

/* Copy len bytes at log position pos (wrapping) out of the log image. */
static void log_copy(const uint8_t *log, uint32_t log_len, uint32_t pos, uint8_t *out,
                     uint32_t len)
{
    uint32_t first = vdk_min_u64(len, log_len - pos);
    memcpy(out, log + pos, first);
    if (first < len)
        memcpy(out + first, log, len - first);
}

static uint32_t desc_sectors(uint32_t count)
{
    return (uint32_t)((64 + 32 * (uint64_t)count + LS - 1) / LS);
}

/* Parse and validate the entry at pos; scratch holds log_len bytes. */
static void parse_entry(const struct vhdx_state *s, const uint8_t *log, uint8_t *scratch,
                        uint32_t pos, struct log_entry *e)
{
    uint32_t log_len = s->hdr.log_length;
    const uint8_t *h = log + pos;
    memset(e, 0, sizeof(*e));
    e->pos = pos;
    if (memcmp(h, "loge", 4) != 0)
        return;
    e->len = fmt_le32(h + 8);
    e->tail = fmt_le32(h + 12);
    e->seq = fmt_le64(h + 16);
    e->count = fmt_le32(h + 24);
    e->flushed = fmt_le64(h + 48);
    e->last = fmt_le64(h + 56);
    if (!e->len || e->len % LS || e->len > log_len || e->tail % LS || e->tail >= log_len ||
        memcmp(h + 32, s->hdr.log_guid, 16) != 0 || e->count > log_len / 32)
        return;
    uint32_t dsec = desc_sectors(e->count);
    if (dsec > e->len / LS)
        return;
    log_copy(log, log_len, pos, scratch, e->len);
    if (fmt_le32(scratch + 4) != vhdx_checksum(scratch, e->len, 4))
        return;
    uint32_t data = 0;
    for (uint32_t i = 0; i < e->count; i++) {
        const uint8_t *d = scratch + 64 + 32 * (size_t)i;
        bool is_data = memcmp(d, "desc", 4) == 0;
        if (!is_data && memcmp(d, "zero", 4) != 0)
            return;
        if (fmt_le64(d + 24) != e->seq || fmt_le64(d + 16) % LS)
            return;
        if (!is_data && fmt_le64(d + 8) % LS)
            return;
        if (is_data) {
            uint64_t soff = (uint64_t)(dsec + data) * LS;
            if (soff + LS > e->len)
                return;
            const uint8_t *ds = scratch + soff;
            if (memcmp(ds, "data", 4) != 0 || fmt_le32(ds + 4) != (uint32_t)(e->seq >> 32) ||
                fmt_le32(ds + 4092) != (uint32_t)e->seq)
                return;
            data++;
        }
    }
    e->ok = dsec + data == e->len / LS;
}

/* A target must lie past the headers and outside the log. */
static bool target_ok(const struct vhdx_state *s, uint64_t off, uint64_t len)
{
    uint64_t lo = s->hdr.log_offset, ll = s->hdr.log_length;
    if (off < VHDX_RT1_OFF || len > (1ull << 40) || off > (1ull << 48))
        return false;
    return !(off < lo + ll && lo < off + len);
}

static int add_overlay(struct vhdx_state *s, uint64_t off, uint64_t len, const uint8_t *data)
{
    struct vhdx_overlay *o = realloc(s->ovl, (s->n_ovl + 1) * sizeof(*o));
    if (!o)
        return -ENOMEM;
    s->ovl = o;
    o[s->n_ovl] = (struct vhdx_overlay){ off, len, NULL };
    if (data) {
        if (!(o[s->n_ovl].data = malloc(LS)))
            return -ENOMEM;
        memcpy(o[s->n_ovl].data, data, LS);
    }
    s->n_ovl++;
    return 0;
}

void vhdx_overlay_free(struct vhdx_state *s)
{
    for (size_t i = 0; i < s->n_ovl; i++)
        free(s->ovl[i].data);
    free(s->ovl);
    s->ovl = NULL;
    s->n_ovl = 0;
}

/* Apply one validated entry (its bytes in `ent`). */
static int apply_entry(struct vdk_node *n, struct vhdx_state *s, const uint8_t *ent,
                       const struct log_entry *e, bool rw, struct vdk_error **errp)
{
    uint32_t dsec = desc_sectors(e->count), data = 0;
    uint8_t sec[LS];
    for (uint32_t i = 0; i < e->count; i++) {
        const uint8_t *d = ent + 64 + 32 * (size_t)i;
        uint64_t off = fmt_le64(d + 16);
        int r;
        if (memcmp(d, "zero", 4) == 0) {
            uint64_t len = fmt_le64(d + 8);
            if (!target_ok(s, off, len))
                return vdk_error_setf(errp, EINVAL, "VHDX log entry %" PRIu64 " zeroes 0x%"
                                      PRIx64 " outside the metadata", e->seq, off);
            r = rw ? vdk_pwrite_zeroes(n->file, off, len, 0) : add_overlay(s, off, len, NULL);
        } else {
            const uint8_t *ds = ent + (uint64_t)(dsec + data++) * LS;
            if (!target_ok(s, off, LS))
                return vdk_error_setf(errp, EINVAL, "VHDX log entry %" PRIu64 " writes 0x%"
                                      PRIx64 " outside the metadata", e->seq, off);
            memcpy(sec, d + 8, 8);
            memcpy(sec + 8, ds + 8, 4084);
            memcpy(sec + 4092, d + 4, 4);
            r = rw ? vdk_pwrite(n->file, sec, LS, off, 0) : add_overlay(s, off, LS, sec);
        }
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot replay the VHDX log");
    }
    return 0;
}

static int cmp_seq_desc(const void *a, const void *b)
{
    const struct log_entry *x = a, *y = b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

int vhdx_log_replay(struct vdk_node *n, struct vhdx_state *s, bool rw, uint64_t file_len,
                    struct vdk_error **errp)
{
    if (fmt_uuid_is_null(s->hdr.log_guid))
        return 0;
    uint32_t log_len = s->hdr.log_length;
    if (log_len > VHDX_MAX_LOG)
        return vdk_error_setf(errp, EFBIG, "VHDX log of %" PRIu32 " bytes needs replay; vdk "
                              "replays logs up to %u bytes", log_len, VHDX_MAX_LOG);
    uint32_t nsec = log_len / LS;
    uint8_t *log = malloc(log_len), *scratch = malloc(log_len);
    struct log_entry *ents = calloc(nsec ? nsec : 1, sizeof(*ents));
    struct log_entry *cand = calloc(nsec ? nsec : 1, sizeof(*cand));
    int r = -ENOMEM, ncand = 0;
    if (!log || !scratch || !ents || !cand) {
        vdk_error_setf(errp, ENOMEM, "out of memory for the VHDX log");
        goto out;
    }
    if ((r = vdk_pread(n->file, log, log_len, s->hdr.log_offset, 0)) < 0) {
        vdk_error_setf_errno(errp, r, "cannot read the VHDX log");
        goto out;
    }
    for (uint32_t i = 0; i < nsec; i++) {
        parse_entry(s, log, scratch, i * LS, &ents[i]);
        if (ents[i].ok)
            cand[ncand++] = ents[i];
    }
    qsort(cand, (size_t)ncand, sizeof(*cand), cmp_seq_desc);
    const struct log_entry *head = NULL;
    for (int c = 0; c < ncand && !head; c++) {
        uint32_t p = cand[c].tail;
        uint64_t want = 0;
        for (int steps = 0; steps <= ncand; steps++) {
            const struct log_entry *e = &ents[p / LS];
            if (!e->ok || (steps && e->seq != want))
                break;
            if (e->pos == cand[c].pos) {
                if (e->seq == cand[c].seq)
                    head = &ents[p / LS];
                break;
            }
            want = e->seq + 1;
            p = (uint32_t)((p + e->len) % log_len);
        }
    }
    r = 0;
    if (!head)
        goto done; /* a log GUID but no valid sequence: nothing to replay */
    if (file_len < head->flushed) {
        r = vdk_error_setf(errp, EINVAL, "VHDX log was written for a file of %" PRIu64
                           " bytes but the file has %" PRIu64 " (truncated)", head->flushed,
                           file_len);
        goto out;
    }
    for (uint32_t p = head->tail;;) {
        const struct log_entry *e = &ents[p / LS];
        log_copy(log, log_len, p, scratch, e->len);
        if ((r = apply_entry(n, s, scratch, e, rw, errp)) < 0)
            goto out;
        if (e == head)
            break;
        p = (uint32_t)((p + e->len) % log_len);
    }
    s->replayed = true;
    s->log_seq = head->seq + 1;
    s->log_head = (uint32_t)((head->pos + head->len) % log_len);
    if (rw && head->last > file_len &&
        (r = vdk_truncate(n->file, head->last, VDK_PREALLOC_OFF, false, errp)) < 0)
        goto out;
done:
    if (rw) {
        /* The replayed data is durable before the log is let go. */
        if ((r = vdk_flush(n->file)) == 0) {
            memset(s->hdr.log_guid, 0, 16);
            r = vhdx_header_update(n, s);
        }
        if (r < 0)
            vdk_error_setf_errno(errp, r, "cannot finish the VHDX log replay");
    }
out:
    free(log);
    free(scratch);
    free(ents);
    free(cand);
    return r;
}

/* Largest number of data sectors one entry of this log can carry. */
static size_t max_per_entry(const struct vhdx_state *s)
{
    uint32_t sectors = s->hdr.log_length / LS;
    size_t c = sectors ? sectors - 1 : 0;
    while (c && desc_sectors((uint32_t)c) + c > sectors)
        c--;
    return c;
}

static int write_entry(struct vdk_node *n, struct vhdx_state *s, const uint64_t *offs,
                       const uint8_t *data, uint32_t count)
{
    uint32_t dsec = desc_sectors(count);
    uint32_t len = (dsec + count) * LS;
    uint8_t *ent = vdk_blk_alloc(len);
    if (!ent)
        return -ENOMEM;
    int64_t flen = vdk_get_length(n->file);
    if (flen < 0) {
        vdk_blk_free(ent);
        return (int)flen;
    }
    uint32_t pos = s->log_head;
    if ((uint64_t)pos + len > s->hdr.log_length)
        pos = 0;
    uint64_t seq = s->log_seq;
    memcpy(ent, "loge", 4);
    fmt_put_le32(ent + 8, len);
    fmt_put_le32(ent + 12, pos);
    fmt_put_le64(ent + 16, seq);
    fmt_put_le32(ent + 24, count);
    memcpy(ent + 32, s->hdr.log_guid, 16);
    fmt_put_le64(ent + 48, (uint64_t)flen);
    fmt_put_le64(ent + 56, (uint64_t)flen);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *d = ent + 64 + 32 * (size_t)i;
        const uint8_t *src = data + (size_t)i * LS;
        uint8_t *ds = ent + (size_t)(dsec + i) * LS;
        memcpy(d, "desc", 4);
        memcpy(d + 4, src + 4092, 4);
        memcpy(d + 8, src, 8);
        fmt_put_le64(d + 16, offs[i]);
        fmt_put_le64(d + 24, seq);
        memcpy(ds, "data", 4);
        fmt_put_le32(ds + 4, (uint32_t)(seq >> 32));
        memcpy(ds + 8, src + 8, 4084);
        fmt_put_le32(ds + 4092, (uint32_t)seq);
    }
    fmt_put_le32(ent + 4, vhdx_checksum(ent, len, 4));
    int r = vdk_pwrite(n->file, ent, len, s->hdr.log_offset + pos, 0);
    vdk_blk_free(ent);
    if (r == 0)
        r = vdk_flush(n->file);
    for (uint32_t i = 0; r == 0 && i < count; i++)
        r = vdk_pwrite(n->file, data + (size_t)i * LS, LS, offs[i], 0);
    if (r == 0)
        r = vdk_flush(n->file);
    if (r == 0) {
        s->log_seq = seq + 1;
        s->log_head = (pos + len) % s->hdr.log_length;
    }
    return r;
}

int vhdx_log_write(struct vdk_node *n, struct vhdx_state *s, const uint64_t *offs,
                   const uint8_t *data, size_t count)
{
    int r;
    size_t per = max_per_entry(s);
    if (!per)
        return -ENOSPC;
    if (!s->log_active) {
        if ((r = fmt_uuid_generate(s->hdr.log_guid)) < 0)
            return r;
        if (!s->log_seq)
            s->log_seq = 1;
        if ((r = vhdx_header_update(n, s)) < 0) {
            memset(s->hdr.log_guid, 0, 16);
            return r;
        }
        s->log_active = true;
    }
    for (size_t i = 0; i < count; i += per) {
        size_t c = vdk_min_u64(per, count - i);
        if ((r = write_entry(n, s, offs + i, data + i * LS, (uint32_t)c)) < 0)
            return r;
    }
    return 0;
}

int vhdx_log_close(struct vdk_node *n, struct vhdx_state *s)
{
    if (!s->log_active)
        return 0;
    memset(s->hdr.log_guid, 0, 16);
    s->log_active = false;
    return vhdx_header_update(n, s);
}
