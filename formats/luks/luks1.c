/* SPDX-License-Identifier: MIT */
/*
 * LUKS1 on-disk header: 592 big-endian bytes at the start of the header
 * area, 8 keyslots, key material areas in 512-byte sectors after it.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "formats/luks/luks.h"

static const uint8_t luks_magic[LUKS_MAGIC_LEN] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

#define SLOT_ACTIVE   0x00AC71F3u
#define SLOT_INACTIVE 0x0000DEADu

/* Field offsets. */
enum {
    H_MAGIC = 0, H_VERSION = 6, H_CIPHER = 8, H_MODE = 40, H_HASH = 72,
    H_PAYLOAD = 104, H_KEYBYTES = 108, H_MKDIGEST = 112, H_MKSALT = 132,
    H_MKITER = 164, H_UUID = 168, H_SLOTS = 208, SLOT_SIZE = 48,
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Copy a fixed-size string field, always NUL-terminated. */
static void get_str(char *dst, const uint8_t *src, size_t n)
{
    memcpy(dst, src, n - 1);
    dst[n - 1] = 0;
}

/*
 * cryptsetup's rule for every keyslot, active or not (an inactive one is
 * where the next passphrase goes): 4000 stripes, key material after the
 * header and before the payload, no two areas overlapping.  cryptsetup
 * and qemu-img refuse the header otherwise; so do we ("keyslot N is
 * invalid", cryptsetup's words), on every open.
 */
static int luks1_check_layout(struct vdk_luks *l, uint32_t key_bytes, struct vdk_error **errp)
{
    uint64_t secs = vdk_align_up((uint64_t)key_bytes * LUKS_STRIPES, 512) / 512;
    uint64_t payload = l->payload_offset / 512;
    int order[LUKS1_NUM_SLOTS];
    for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
        const struct luks_keyslot *ks = &l->slots[i];
        uint64_t off = ks->area_offset / 512;
        if (ks->stripes != LUKS_STRIPES)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d is invalid (stripes "
                                  "%" PRIu32 ", not %u)", i, ks->stripes, LUKS_STRIPES);
        if (ks->area_offset < LUKS1_HDR_SIZE || off >= payload || payload - off < secs)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d is invalid (key "
                                  "material at sector %" PRIu64 " overlaps the header or "
                                  "the payload)", i, off);
        int j = i; /* insertion sort by offset */
        for (; j > 0 && l->slots[order[j - 1]].area_offset > ks->area_offset; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (int i = 0; i + 1 < LUKS1_NUM_SLOTS; i++) {
        uint64_t a = l->slots[order[i]].area_offset / 512;
        uint64_t b = l->slots[order[i + 1]].area_offset / 512;
        if (b - a < secs)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d is invalid (its key "
                                  "material overlaps keyslot %d's)", order[i + 1], order[i]);
    }
    return 0;
}

int luks1_parse(struct vdk_luks *l, const uint8_t *h, struct vdk_error **errp)
{
    char cipher[33], mode[33], hash[33];
    int r;
    if (memcmp(h, luks_magic, LUKS_MAGIC_LEN) != 0)
        return vdk_error_setf(errp, EINVAL, "not a LUKS header (bad magic)");
    l->version = 1;
    l->nslots = LUKS1_NUM_SLOTS;
    l->sector_size = 512;
    get_str(cipher, h + H_CIPHER, 32);
    get_str(mode, h + H_MODE, 32);
    get_str(hash, h + H_HASH, 32);
    get_str(l->uuid, h + H_UUID, 40);
    uint32_t key_bytes = be32(h + H_KEYBYTES);
    if (key_bytes == 0 || key_bytes > LUKS_KEY_MAX)
        return vdk_error_setf(errp, EINVAL, "LUKS header: invalid key size %" PRIu32, key_bytes);
    if ((r = vdk_cipher_spec_parse(&l->spec, cipher, mode, key_bytes, errp)) < 0) {
        vdk_error_prepend(errp, "LUKS header");
        return r;
    }
    int hi = vdk_hash_parse(hash);
    if (hi < 0)
        return vdk_error_setf(errp, ENOTSUP, "LUKS header: unsupported hash '%s'", hash);
    l->hash = (enum vdk_hash)hi;
    uint64_t avail = luks_avail(l);
    l->payload_offset = (uint64_t)be32(h + H_PAYLOAD) * 512;
    if (l->payload_offset > avail)
        return vdk_error_setf(errp, EINVAL, "LUKS header: payload offset %" PRIu64
                              " is beyond the end of the file", l->payload_offset);
    l->digest.hash = l->hash;
    l->digest.iterations = be32(h + H_MKITER);
    l->digest.salt_len = LUKS_SALT_LEN;
    l->digest.digest_len = LUKS1_DIGEST_LEN;
    memcpy(l->digest.salt, h + H_MKSALT, LUKS_SALT_LEN);
    memcpy(l->digest.digest, h + H_MKDIGEST, LUKS1_DIGEST_LEN);
    if (l->digest.iterations == 0 || l->digest.iterations > VDK_PBKDF2_MAX_ITERS)
        return vdk_error_setf(errp, EINVAL, "LUKS header: invalid master key iterations");
    for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
        const uint8_t *s = h + H_SLOTS + i * SLOT_SIZE;
        struct luks_keyslot *ks = &l->slots[i];
        uint32_t state = be32(s);
        if (state != SLOT_ACTIVE && state != SLOT_INACTIVE)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d has an invalid "
                                  "state 0x%08" PRIx32, i, state);
        ks->active = state == SLOT_ACTIVE;
        ks->kdf = (struct vdk_kdf){ .type = VDK_KDF_PBKDF2, .hash = l->hash,
                                    .iterations = be32(s + 4) };
        memcpy(ks->salt, s + 8, LUKS_SALT_LEN);
        ks->salt_len = LUKS_SALT_LEN;
        ks->area_offset = (uint64_t)be32(s + 40) * 512;
        ks->stripes = be32(s + 44);
        ks->af_hash = l->hash;
        ks->area_cipher = l->spec;
        ks->priority = -1;
        if (!ks->active)
            continue;
        if (ks->kdf.iterations == 0 || ks->kdf.iterations > VDK_PBKDF2_MAX_ITERS)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d has invalid "
                                  "iterations", i);
        if (ks->stripes == 0 || ks->stripes > LUKS_MAX_STRIPES)
            return vdk_error_setf(errp, EINVAL, "LUKS header: keyslot %d has invalid "
                                  "stripes %" PRIu32, i, ks->stripes);
        ks->area_size = vdk_align_up((uint64_t)key_bytes * ks->stripes, 512);
        if (ks->area_offset < 512 || ks->area_offset > avail ||
            ks->area_size > avail - ks->area_offset)
            return vdk_error_setf(errp, EINVAL, "LUKS header: key material of keyslot %d "
                                  "is beyond the end of the file", i);
        /* The payload must not overlap the key material: writes would
           destroy it (and detached headers, payload offset 0, are not
           supported). */
        if (ks->area_offset + ks->area_size > l->payload_offset)
            return vdk_error_setf(errp, EINVAL, "LUKS header: the payload overlaps the key "
                                  "material of keyslot %d", i);
    }
    return luks1_check_layout(l, key_bytes, errp);
}

int luks1_write_header(struct vdk_luks *l, struct vdk_error **errp)
{
    uint8_t h[LUKS1_HDR_SIZE];
    char mode[40];
    memset(h, 0, sizeof(h));
    memcpy(h + H_MAGIC, luks_magic, LUKS_MAGIC_LEN);
    h[H_VERSION + 1] = 1;
    memcpy(h + H_CIPHER, "aes", 3);
    vdk_cipher_spec_mode_name(&l->spec, mode, sizeof(mode));
    memcpy(h + H_MODE, mode, strlen(mode));
    memcpy(h + H_HASH, vdk_hash_name(l->hash), strlen(vdk_hash_name(l->hash)));
    put_be32(h + H_PAYLOAD, (uint32_t)(l->payload_offset / 512));
    put_be32(h + H_KEYBYTES, l->spec.key_len);
    memcpy(h + H_MKDIGEST, l->digest.digest, LUKS1_DIGEST_LEN);
    memcpy(h + H_MKSALT, l->digest.salt, LUKS_SALT_LEN);
    put_be32(h + H_MKITER, l->digest.iterations);
    memcpy(h + H_UUID, l->uuid, strnlen(l->uuid, 40));
    for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
        uint8_t *s = h + H_SLOTS + i * SLOT_SIZE;
        const struct luks_keyslot *ks = &l->slots[i];
        put_be32(s, ks->active ? SLOT_ACTIVE : SLOT_INACTIVE);
        if (ks->active) {
            put_be32(s + 4, ks->kdf.iterations);
            memcpy(s + 8, ks->salt, LUKS_SALT_LEN);
        }
        put_be32(s + 40, (uint32_t)(ks->area_offset / 512));
        put_be32(s + 44, ks->stripes);
    }
    return luks_write(l, 0, h, sizeof(h), errp);
}
