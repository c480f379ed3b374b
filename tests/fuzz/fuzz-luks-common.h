/* SPDX-License-Identifier: MIT */
/*
 * Shared body of the LUKS fuzz targets: the input is the image; it is
 * parsed without a key, its info is built, and when the costs it asks for
 * are small (so a run stays fast) it is unlocked with the seeds'
 * passphrase "x" and one sector is encrypted and decrypted.
 */
#ifndef VDK_FUZZ_LUKS_COMMON_H
#define VDK_FUZZ_LUKS_COMMON_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "block/driver.h"
#include "fuzz-util.h"
#include "formats/luks/luks.h"

/* Unlocking is only tried when every active keyslot is this cheap. */
static bool fuzz_luks_cheap(const struct vdk_luks *l)
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

/* Parse, describe and (when cheap) unlock the image in `file`; drops it. */
static void fuzz_luks_exercise(struct vdk_node *file)
{
    struct vdk_luks *l = NULL;
    struct vdk_error *e = NULL;
    if (vdk_luks_open(&l, file, 0, 0, NULL, 0, VDK_LUKS_NO_KEY, &e) < 0) {
        vdk_error_free(e);
        vdk_node_unref(file);
        return;
    }
    struct json_object *j = NULL;
    if (vdk_luks_info(l, &j) == 0)
        json_object_put(j);
    bool try_key = fuzz_luks_cheap(l);
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
    vdk_node_unref(file);
}

#endif
