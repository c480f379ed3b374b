/* SPDX-License-Identifier: MIT */
/*
 * Keyslot management, with qemu-img amend's options:
 *   state=active,new-secret=ID[,keyslot=N][,iter-time=MS]  add a passphrase
 *   state=inactive,old-secret=ID     remove every keyslot it opens
 *   state=inactive,keyslot=N         remove keyslot N
 * Removing the last active keyslot is refused: the data would be lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "formats/luks/luks.h"
#include "vdk/secret.h"

static const char *const state_names[] = { "active", "inactive", NULL };

const struct vdk_opt_desc vdk_luks_amend_opt_table[] = {
    { "state", VDK_OPT_ENUM, "Select new state of affected keyslots", NULL, state_names },
    { "new-secret", VDK_OPT_STRING, "ID of secret providing the new passphrase", NULL,
      NULL },
    { "old-secret", VDK_OPT_STRING, "ID of secret providing the old passphrase", NULL,
      NULL },
    { "keyslot", VDK_OPT_NUMBER, "Select a single keyslot to modify explicitly", NULL,
      NULL },
    { "iter-time", VDK_OPT_NUMBER, "Time to spend in PBKDF in milliseconds", "2000", NULL },
    { NULL, 0, NULL, NULL, NULL },
};

/* LUKS2 tokens name the keyslots they unlock; cryptsetup rejects a header
   whose token names a keyslot that no longer exists. */
static void drop_from_tokens(struct vdk_luks *l, int slot)
{
    char id[16];
    snprintf(id, sizeof(id), "%d", slot);
    if (!l->tokens)
        return;
    json_object_object_foreach(l->tokens, tid, tok) {
        json_object *ks;
        (void)tid;
        if (!json_object_is_type(tok, json_type_object) ||
            !json_object_object_get_ex(tok, "keyslots", &ks) ||
            !json_object_is_type(ks, json_type_array))
            continue;
        for (size_t i = json_object_array_length(ks); i-- > 0;) {
            json_object *e = json_object_array_get_idx(ks, i);
            if (json_object_is_type(e, json_type_string) &&
                strcmp(json_object_get_string(e), id) == 0)
                json_object_array_del_idx(ks, i, 1);
        }
    }
}

/* Overwrite a keyslot's key material with random bytes, then forget it. */
static int erase_slot(struct vdk_luks *l, int i, struct vdk_error **errp)
{
    struct luks_keyslot *ks = &l->slots[i];
    uint64_t len = ks->area_size;
    uint8_t *junk = vdk_secure_alloc(len);
    if (!junk)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_random_bytes(junk, len);
    if (r == 0)
        r = luks_write(l, ks->area_offset, junk, len, errp);
    else
        r = vdk_error_setf(errp, EIO, "no random bytes");
    vdk_secure_free(junk, len);
    if (r < 0)
        return r;
    uint64_t off = ks->area_offset;
    uint32_t stripes = ks->stripes;
    if (l->version == 2)
        drop_from_tokens(l, i);
    memset(ks, 0, sizeof(*ks));
    ks->priority = -1;
    if (l->version == 1) { /* LUKS1 keeps the layout of inactive slots */
        ks->area_offset = off;
        ks->stripes = stripes;
    }
    return 0;
}

static int active_count(const struct vdk_luks *l)
{
    int n = 0;
    for (int i = 0; i < l->nslots; i++)
        n += l->slots[i].active;
    return n;
}

static int add_key(struct vdk_luks *l, const char *new_id, int64_t slot, uint32_t iter_ms,
                   struct vdk_error **errp)
{
    char *pass = NULL;
    size_t plen = 0;
    int r;
    if (slot < 0) {
        for (int i = 0; i < l->nslots && slot < 0; i++)
            if (!l->slots[i].active)
                slot = i;
        if (slot < 0)
            return vdk_error_setf(errp, ENOSPC, "no free keyslot");
    } else if (l->slots[slot].active) {
        return vdk_error_setf(errp, EBUSY, "keyslot %" PRId64 " is already active", slot);
    }
    if ((r = vdk_luks_get_secret(new_id, &pass, &plen, errp)) < 0)
        return r;
    /* New LUKS2 keyslots copy the kdf of an existing one (argon2 costs). */
    struct vdk_kdf kdf = { .type = VDK_KDF_PBKDF2, .hash = l->hash };
    for (int i = 0; i < l->nslots; i++) {
        if (l->slots[i].active && l->version == 2) {
            kdf = l->slots[i].kdf;
            break;
        }
    }
    r = luks_keyslot_store(l, (int)slot, pass, plen, &kdf, iter_ms, 0, errp);
    vdk_secret_free(pass, plen);
    return r;
}

static int remove_keys(struct vdk_luks *l, const char *old_id, int64_t slot,
                       struct vdk_error **errp)
{
    bool victims[LUKS2_NUM_SLOTS] = { false };
    int nv = 0, r;
    if (slot >= 0) {
        if (!l->slots[slot].active)
            return vdk_error_setf(errp, ENOENT, "keyslot %" PRId64 " is not active", slot);
        victims[slot] = true;
        nv = 1;
    } else {
        char *pass = NULL;
        size_t plen = 0;
        uint8_t *key = vdk_secure_alloc(l->spec.key_len);
        if (!key)
            return vdk_error_setf(errp, ENOMEM, "out of memory");
        if ((r = vdk_luks_get_secret(old_id, &pass, &plen, errp)) < 0) {
            vdk_secure_free(key, l->spec.key_len);
            return r;
        }
        for (int i = 0; i < l->nslots; i++) {
            if (!l->slots[i].active)
                continue;
            struct vdk_error *e = NULL;
            r = luks_keyslot_unlock(l, i, pass, plen, key, &e);
            vdk_error_free(e);
            if (r == 0) {
                victims[i] = true;
                nv++;
            }
        }
        vdk_secret_free(pass, plen);
        vdk_secure_free(key, l->spec.key_len);
        if (!nv)
            return vdk_error_setf(errp, EPERM, "invalid passphrase: no keyslot matches "
                                  "the old secret");
    }
    if (nv >= active_count(l))
        return vdk_error_setf(errp, EPERM, "refusing to remove the last active keyslot: "
                              "the data could never be decrypted again");
    for (int i = 0; i < l->nslots; i++)
        if (victims[i] && (r = erase_slot(l, i, errp)) < 0)
            return r;
    return 0;
}

int vdk_luks_amend(struct vdk_luks *l, struct vdk_opts *o, struct vdk_error **errp)
{
    uint64_t iter = 2000, ks = 0;
    int r;
    if (!l->key)
        return vdk_error_setf(errp, EPERM, "the LUKS header is locked");
    if (l->foreign_slots)
        return vdk_error_setf(errp, ENOTSUP, "the LUKS2 header has keyslots of another "
                              "volume key; use cryptsetup to change it");
    /* Reject unknown options before changing anything. */
    if ((r = vdk_opts_validate(o, vdk_luks_amend_opt_table, "LUKS amend", errp)) < 0)
        return r;
    int state = vdk_opts_get_enum(o, "state", state_names, -1, errp);
    if (state == -EINVAL)
        return state;
    const char *new_id = vdk_opts_get(o, "new-secret");
    const char *old_id = vdk_opts_get(o, "old-secret");
    bool has_slot = vdk_opts_has(o, "keyslot");
    if ((r = vdk_opts_get_uint(o, "keyslot", 0, &ks, errp)) < 0 ||
        (r = vdk_opts_get_uint(o, "iter-time", 2000, &iter, errp)) < 0)
        return r;
    if (has_slot && ks >= (uint64_t)l->nslots)
        return vdk_error_setf(errp, EINVAL, "keyslot must be 0..%d", l->nslots - 1);
    if (iter < 1 || iter > 3600000)
        return vdk_error_setf(errp, EINVAL, "iter-time must be 1..3600000 ms");
    if (state < 0)
        return vdk_error_setf(errp, EINVAL, "amending a LUKS image needs state=active or "
                              "state=inactive");
    int64_t slot = has_slot ? (int64_t)ks : -1;
    if (state == 0) {
        if (!new_id)
            return vdk_error_setf(errp, EINVAL, "state=active needs new-secret");
        r = add_key(l, new_id, slot, (uint32_t)iter, errp);
    } else {
        if (new_id)
            return vdk_error_setf(errp, EINVAL, "new-secret is only valid with state=active");
        if (!old_id && !has_slot)
            return vdk_error_setf(errp, EINVAL, "state=inactive needs old-secret or keyslot");
        if (old_id && has_slot)
            return vdk_error_setf(errp, EINVAL, "give only one of old-secret and keyslot");
        r = remove_keys(l, old_id, slot, errp);
    }
    if (r < 0)
        return r;
    return l->version == 1 ? luks1_write_header(l, errp) : luks2_write_header(l, errp);
}
