/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: LUKS2 binary headers, JSON metadata (both copies) and
 * keyslot unlocking.  Mutated JSON would almost never get past the header
 * checksum, so for most inputs the target first re-seals both copies with
 * a correct checksum; inputs with an odd byte 264 (header padding) keep
 * theirs, so the checksum checks are fuzzed as well.
 * The input is the image; it is parsed without a key, its info is built,
 * and when the costs it asks for are small (so a run stays fast) it is
 * unlocked with the seeds' passphrase "x".
 */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "formats/luks/luks.h"

/* Unlocking is only tried when every active keyslot is this cheap. */
static bool cheap(const struct vdk_luks *l)
{
    if (l->digest.iterations > 5000)
        return false;
    for (int i = 0; i < l->nslots; i++) {
        const struct luks_keyslot *ks = &l->slots[i];
        if (!ks->active)
            continue;
        if (ks->kdf.type == VDK_KDF_PBKDF2 ? ks->kdf.iterations > 5000
            : ks->kdf.iterations > 8 || ks->kdf.memory_kib > 2048)
            return false;
    }
    return true;
}

/* Recompute the sha256 checksum of the header copy at off, if sane. */
static void reseal(uint8_t *buf, size_t size, uint64_t off)
{
    if (off > size || size - off < LUKS2_BIN_SIZE)
        return;
    uint8_t *h = buf + off;
    uint64_t hs = 0;
    for (int i = 8; i < 16; i++)
        hs = hs << 8 | h[i];
    if (hs < LUKS2_BIN_SIZE || hs > size - off || hs > LUKS2_HDR_SIZE_MAX)
        return;
    memset(h + 448, 0, 64);
    (void)vdk_hash_digest(VDK_HASH_SHA256, h, hs, h + 448);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = NULL;
    struct vdk_opts *o = vdk_opts_new();
    char s[32];
    snprintf(s, sizeof(s), "%zu", size);
    if (!o || vdk_opts_set(o, "size", s) < 0) {
        vdk_opts_free(o);
        return 0;
    }
    if (vdk_open_protocol(&file, "memory://fuzz", o, VDK_O_RDWR, NULL) < 0)
        return 0;
    uint8_t *copy = size ? malloc(size) : NULL;
    if (copy) {
        memcpy(copy, data, size);
        if (size >= LUKS2_BIN_SIZE && !(copy[264] & 1)) {
            uint64_t hs = 0;
            for (int i = 8; i < 16; i++)
                hs = hs << 8 | copy[i];
            reseal(copy, size, 0);
            reseal(copy, size, hs);
        }
    }
    int w = copy ? vdk_pwrite(file, copy, size, 0, 0) : 0;
    free(copy);
    if (w < 0)
        goto out;
    struct vdk_luks *l = NULL;
    struct vdk_error *e = NULL;
    if (vdk_luks_open(&l, file, 0, 0, NULL, 0, VDK_LUKS_NO_KEY, &e) < 0) {
        vdk_error_free(e);
        goto out;
    }
    struct json_object *j = NULL;
    if (vdk_luks_info(l, &j) == 0)
        json_object_put(j);
    bool try_key = cheap(l);
    vdk_luks_close(l);
    l = NULL;
    if (try_key) {
        e = NULL;
        if (vdk_luks_open(&l, file, 0, 0, "x", 1, 0, &e) == 0) {
            uint8_t buf[4096] = { 0 };
            uint32_t ss = vdk_luks_sector_size(l);
            (void)vdk_luks_encrypt(l, 0, buf, buf, ss);
            (void)vdk_luks_decrypt(l, 0, buf, buf, ss);
            vdk_luks_close(l);
        }
        vdk_error_free(e);
    }
out:
    vdk_node_unref(file);
    return 0;
}
