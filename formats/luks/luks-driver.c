/* SPDX-License-Identifier: MIT */
/*
 * The "luks" format driver: a LUKS1 or LUKS2 header at the start of the
 * file, the encrypted payload after it.  Guest offset x is file offset
 * payload_offset + x; its IV sector is x / 512 (plus the LUKS2 iv_tweak).
 *
 * Reads decrypt in the caller's buffer.  Writes encrypt into a bounce
 * buffer taken from a small pool (the caller's buffer is const), so no
 * request allocates on the hot path once the pool is warm.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks/luks.h"
#include "vdk/secret.h"

#define LUKS_MAX_TRANSFER (2u << 20)
#define LUKS_POOL_MAX 16

struct luks_state {
    struct vdk_luks *l;
    pthread_mutex_t lock;
    void *pool[LUKS_POOL_MAX];
    int npool;
};

static const struct vdk_opt_desc luks_open_opts[] = {
    { "key-secret", VDK_OPT_STRING, "ID of the secret that provides the keyslot passphrase",
      NULL, NULL },
    VDK_LUKS_LIMIT_OPTS(""),
    { NULL, 0, NULL, NULL, NULL },
};

static int luks_probe(const uint8_t *buf, size_t len, const char *filename)
{
    /* Any version: open refuses the ones it does not know, by name. */
    return len >= 6 && memcmp(buf, "LUKS\xba\xbe", 6) == 0 ? 100 : 0;
}

static void luks_close(struct vdk_node *n)
{
    struct luks_state *s = n->opaque;
    for (int i = 0; i < s->npool; i++)
        vdk_blk_free(s->pool[i]);
    pthread_mutex_destroy(&s->lock);
    vdk_luks_close(s->l);
}

static int luks_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct luks_state *s = n->opaque;
    const char *id = vdk_opts_get(opts, "key-secret");
    struct vdk_luks_limits lim;
    char *pass = NULL;
    size_t plen = 0;
    int r;
    if ((r = vdk_luks_limits_from_opts(&lim, opts, "", errp)) < 0)
        return r;
    /* Metadata-only opens (info) derive no key, as qemu-img's: the
       header is parsed, the passphrase not even looked up. */
    bool nokey = (flags & VDK_O_NO_IO) != 0;
    /* A version we cannot read is refused before asking for a passphrase. */
    uint8_t magic[8];
    if (vdk_pread(n->file, magic, sizeof(magic), 0, 0) == 0 &&
        memcmp(magic, "LUKS\xba\xbe", 6) == 0 && magic[6] == 0 && magic[7] != 1 &&
        magic[7] != 2)
        return vdk_error_setf(errp, ENOTSUP, "unsupported LUKS version %u",
                              (unsigned)magic[7]);
    if (!nokey && (r = vdk_luks_get_secret(id, &pass, &plen, errp)) < 0)
        return r;
    r = vdk_luks_open(&s->l, n->file, 0, 0, NULL, 0, VDK_LUKS_NO_KEY, errp);
    if (r == 0 && !nokey) {
        vdk_luks_set_limits(s->l, &lim);
        if ((r = vdk_luks_unlock(s->l, pass, plen, errp)) < 0) {
            vdk_luks_close(s->l);
            s->l = NULL;
        }
    }
    vdk_secret_free(pass, plen);
    if (r < 0)
        return r;
    pthread_mutex_init(&s->lock, NULL);
    int64_t flen = vdk_get_length(n->file);
    uint64_t po = vdk_luks_payload_offset(s->l), ss = vdk_luks_sector_size(s->l);
    /* A payload ending inside a sector: qemu-img counts the partial
       512-byte sector (read as zeros past the end of the file, then
       decrypted).  Larger LUKS2 sectors round down, as dm-crypt does. */
    uint64_t pl = flen > 0 && (uint64_t)flen > po ? (uint64_t)flen - po : 0;
    n->size = ss == 512 ? vdk_align_up(pl, 512) : vdk_align_down(pl, ss);
    n->limits.request_alignment = (uint32_t)ss;
    n->limits.max_transfer = LUKS_MAX_TRANSFER;
    n->limits.opt_transfer = LUKS_MAX_TRANSFER;
    n->supported_write_flags = n->file->supported_write_flags;
    return 0;
}

static int luks_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes, void *buf,
                      unsigned flags)
{
    struct luks_state *s = n->opaque;
    int r = vdk_pread(n->file, buf, bytes, vdk_luks_payload_offset(s->l) + offset, flags);
    if (r < 0)
        return r;
    return vdk_luks_decrypt(s->l, offset / 512, buf, buf, bytes);
}

static void *bounce_get(struct luks_state *s)
{
    void *b = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->npool)
        b = s->pool[--s->npool];
    pthread_mutex_unlock(&s->lock);
    return b ? b : vdk_blk_alloc(LUKS_MAX_TRANSFER);
}

static void bounce_put(struct luks_state *s, void *b)
{
    pthread_mutex_lock(&s->lock);
    if (s->npool < LUKS_POOL_MAX) {
        s->pool[s->npool++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    vdk_blk_free(b);
}

static int luks_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       const void *buf, unsigned flags)
{
    struct luks_state *s = n->opaque;
    void *b = bounce_get(s);
    if (!b)
        return -ENOMEM;
    int r = vdk_luks_encrypt(s->l, offset / 512, buf, b, bytes);
    if (r == 0)
        r = vdk_pwrite(n->file, b, bytes, vdk_luks_payload_offset(s->l) + offset, flags);
    bounce_put(s, b);
    return r;
}

/* Same answer as QEMU's crypto driver: the file's status at the payload
   offset, so sparse conversions match qemu-img's byte for byte. */
static int luks_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct luks_state *s = n->opaque;
    *pnum = bytes;
    *map = vdk_luks_payload_offset(s->l) + offset;
    *file = n->file;
    /* Always data: a hole in the file is zero ciphertext, which decrypts
       to noise, not zeros (qemu-img map and convert say the same). */
    return VDK_BS_DATA | VDK_BS_ALLOCATED | VDK_BS_OFFSET_VALID;
}

/*
 * A new image's size, parameters and passphrase, from the create options
 * (a tty prompt's answer is remembered, so check and create ask once).
 * *id and *pass are the caller's to release, also on failure.
 */
static int luks_create_plan(struct vdk_opts *opts, struct vdk_luks_params *p, uint64_t *size,
                            char **id, char **pass, size_t *plen, struct vdk_error **errp)
{
    int r = vdk_opts_get_size(opts, "size", 0, size, errp);
    if (r < 0 || (r = vdk_luks_params_from_opts(p, id, opts, errp)) < 0)
        return r;
    if (*size > INT64_MAX - vdk_luks_header_size(p) - p->sector_size)
        return vdk_error_setf(errp, EINVAL, "image size too large");
    return vdk_luks_get_secret(*id, pass, plen, errp);
}

static int luks_create_check(const char *filename, struct vdk_opts *opts,
                             struct vdk_error **errp)
{
    struct vdk_luks_params p;
    char *id = NULL, *pass = NULL;
    size_t plen = 0;
    uint64_t size = 0;
    int r = luks_create_plan(opts, &p, &size, &id, &pass, &plen, errp);
    vdk_secret_free(pass, plen);
    free(id);
    return r;
}

static int luks_create(const char *filename, struct vdk_node *file, struct vdk_opts *opts,
                       struct vdk_error **errp)
{
    struct vdk_luks_params p;
    struct vdk_luks *l = NULL;
    char *id = NULL, *pass = NULL;
    size_t plen = 0;
    uint64_t size = 0;
    int r = luks_create_plan(opts, &p, &size, &id, &pass, &plen, errp);
    if (r == 0)
        r = vdk_luks_format(&l, file, 0, &p, pass, plen, errp);
    if (r == 0)
        r = vdk_truncate(file, vdk_luks_payload_offset(l) + vdk_align_up(size, p.sector_size),
                         VDK_PREALLOC_OFF, true, errp);
    vdk_luks_close(l);
    vdk_secret_free(pass, plen);
    free(id);
    return r;
}

static int luks_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                         bool allow_shrink, struct vdk_error **errp)
{
    struct luks_state *s = n->opaque;
    uint64_t po = vdk_luks_payload_offset(s->l), ss = vdk_luks_sector_size(s->l);
    if (size % ss)
        return vdk_error_setf(errp, EINVAL, "the size must be a multiple of the LUKS "
                              "sector size %" PRIu64, ss);
    if (size > (uint64_t)INT64_MAX - po)
        return vdk_error_setf(errp, EINVAL, "image size too large");
    int r = vdk_truncate(n->file, po + size, prealloc, allow_shrink, errp);
    if (r == 0)
        n->size = size;
    return r;
}

/* As qemu-img: the header size for the chosen cipher plus the payload. */
static int luks_measure(struct vdk_opts *opts, struct vdk_node *src, uint64_t size,
                        struct vdk_measure *out, struct vdk_error **errp)
{
    struct vdk_opts *o = opts ? vdk_opts_clone(opts) : vdk_opts_new();
    struct vdk_luks_params p;
    char *id = NULL;
    int r = o ? 0 : vdk_error_setf(errp, ENOMEM, "out of memory");
    if (r == 0 && !src)
        r = vdk_opts_get_size(o, "size", size, &size, errp);
    if (r == 0)
        r = vdk_luks_params_from_opts(&p, &id, o, errp);
    if (r == 0 && !id)
        r = vdk_error_setf(errp, EINVAL, "Parameter 'key-secret' is required for cipher");
    if (r == 0 && src) {
        int64_t len = vdk_get_length(src);
        if (len < 0)
            r = vdk_error_setf_errno(errp, (int)len, "could not get the size of '%s'",
                                     vdk_node_filename(src));
        else
            size = (uint64_t)len;
    }
    if (r == 0 && size > (uint64_t)INT64_MAX - vdk_luks_header_size(&p) - p.sector_size)
        r = vdk_error_setf(errp, ERANGE, "image size is too large");
    if (r == 0) {
        out->required = vdk_luks_header_size(&p) + vdk_align_up(size, p.sector_size);
        out->fully_allocated = out->required;
    }
    free(id);
    vdk_opts_free(o);
    return r;
}

static int luks_get_info(struct vdk_node *n, struct vdk_driver_info *info,
                         struct vdk_error **errp)
{
    struct luks_state *s = n->opaque;
    json_object *data = NULL, *fs = json_object_new_object();
    info->encrypted = true;
    info->has_dirty_flag = true; /* qemu-img prints "dirty-flag": false */
    if (!fs || vdk_luks_info(s->l, &data) < 0) {
        json_object_put(fs);
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    }
    json_object_object_add(fs, "type", json_object_new_string("luks"));
    json_object_object_add(fs, "data", data);
    info->format_specific = fs;
    return 0;
}

static int luks_amend(struct vdk_node *n, struct vdk_opts *opts, struct vdk_error **errp)
{
    struct luks_state *s = n->opaque;
    int r = vdk_luks_amend(s->l, opts, errp);
    if (r == 0)
        r = vdk_opts_check_unused(opts, "driver 'luks'", errp);
    return r;
}

const struct vdk_driver vdk_driver_luks = {
    .name = "luks",
    .kind = VDK_DRV_FORMAT,
    .state_size = sizeof(struct luks_state),
    .open_opts = luks_open_opts,
    .create_opts = vdk_luks_create_opt_table,
    .no_zero_init = true, /* zeroed sectors decrypt to noise */
    .probe = luks_probe,
    .open = luks_open,
    .close = luks_close,
    .create = luks_create,
    .create_check = luks_create_check,
    .pread = luks_pread,
    .pwrite = luks_pwrite,
    .block_status = luks_block_status,
    .truncate = luks_truncate,
    .measure = luks_measure,
    .get_info = luks_get_info,
    .amend = luks_amend,
};
