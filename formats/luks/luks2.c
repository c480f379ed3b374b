/* SPDX-License-Identifier: MIT */
/*
 * LUKS2 header: two copies of (4096-byte binary header + JSON area), each
 * checksummed; keyslot areas after them; the payload segment at the offset
 * the JSON names.  On open, the copy with the valid checksum and the
 * highest seqid wins, so a damaged primary falls back to the secondary.
 * Writes update both copies with a new seqid.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/luks/luks.h"

static const uint8_t magic1[LUKS_MAGIC_LEN] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };
static const uint8_t magic2[LUKS_MAGIC_LEN] = { 'S', 'K', 'U', 'L', 0xba, 0xbe };

/* Binary header field offsets. */
enum {
    B_MAGIC = 0, B_VERSION = 6, B_HDR_SIZE = 8, B_SEQID = 16, B_LABEL = 24,
    B_CSUM_ALG = 72, B_SALT = 104, B_UUID = 168, B_SUBSYSTEM = 208,
    B_HDR_OFFSET = 256, B_CSUM = 448,
};

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static bool valid_hdr_size(uint64_t s)
{
    return s >= LUKS2_HDR_SIZE_DEF && s <= LUKS2_HDR_SIZE_MAX && vdk_is_pow2(s);
}

/*
 * ---- JSON helpers: each returns false on a missing or mistyped member ----
 * Rules: an out-parameter is written only when the helper succeeds, and
 * every json_object pointer they hand out is borrowed from the tree being
 * parsed; parse_json() takes its own reference (json_object_get) on what
 * outlives that tree (tokens, config).
 */

static bool jobj(json_object *o, const char *k, json_type t, json_object **out)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
        return false;
    *out = v;
    return true;
}

static bool jstring(json_object *o, const char *k, const char **out)
{
    json_object *v;
    if (!jobj(o, k, json_type_string, &v))
        return false;
    *out = json_object_get_string(v);
    return true;
}

/* LUKS2 stores 64-bit numbers as decimal strings. */
static bool ju64(json_object *o, const char *k, uint64_t *out)
{
    const char *s;
    if (!jstring(o, k, &s) || !*s || strlen(s) > 20)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool jint(json_object *o, const char *k, int64_t min, int64_t max, int64_t *out)
{
    json_object *v;
    if (!jobj(o, k, json_type_int, &v))
        return false;
    int64_t x = json_object_get_int64(v);
    if (x < min || x > max)
        return false;
    *out = x;
    return true;
}

static bool jsalt(json_object *o, const char *k, uint8_t *out, uint32_t *len, size_t max)
{
    const char *s;
    int n;
    if (!jstring(o, k, &s) || (n = luks_b64_decode(s, out, max)) <= 0)
        return false;
    *len = (uint32_t)n;
    return true;
}

static int bad(struct vdk_error **errp, const char *what)
{
    return vdk_error_setf(errp, EINVAL, "LUKS2 header: invalid metadata (%s)", what);
}

static int parse_kdf(json_object *kdf, struct luks_keyslot *ks)
{
    const char *type, *hash;
    int64_t v, m, p;
    if (!jstring(kdf, "type", &type))
        return -1;
    int t = vdk_kdf_type_parse(type);
    if (t < 0)
        return -1;
    ks->kdf.type = (enum vdk_kdf_type)t;
    if (!jsalt(kdf, "salt", ks->salt, &ks->salt_len, sizeof(ks->salt)))
        return -1;
    if (t == VDK_KDF_PBKDF2) {
        if (!jstring(kdf, "hash", &hash) || vdk_hash_parse(hash) < 0 ||
            !jint(kdf, "iterations", 1, VDK_PBKDF2_MAX_ITERS, &v))
            return -1;
        ks->kdf.hash = (enum vdk_hash)vdk_hash_parse(hash);
        ks->kdf.iterations = (uint32_t)v;
        return 0;
    }
    if (!jint(kdf, "time", 1, VDK_ARGON2_MAX_TIME, &v) ||
        !jint(kdf, "memory", VDK_ARGON2_MIN_MEMORY, VDK_ARGON2_MAX_MEMORY, &m) ||
        !jint(kdf, "cpus", 1, VDK_ARGON2_MAX_PARALLEL, &p))
        return -1;
    ks->kdf.iterations = (uint32_t)v;
    ks->kdf.memory_kib = (uint32_t)m;
    ks->kdf.parallel = (uint32_t)p;
    return 0;
}

static int parse_keyslot(struct vdk_luks *l, json_object *j, struct luks_keyslot *ks,
                         uint32_t *key_size, struct vdk_error **errp)
{
    json_object *af, *area, *kdf;
    const char *type, *enc, *hash;
    int64_t ksz, stripes, aksz, prio;
    uint64_t off, size;
    if (!jstring(j, "type", &type) || strcmp(type, "luks2") != 0)
        return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: unsupported keyslot type");
    if (!jint(j, "key_size", 1, LUKS_KEY_MAX, &ksz) ||
        !jobj(j, "af", json_type_object, &af) ||
        !jobj(j, "area", json_type_object, &area) ||
        !jobj(j, "kdf", json_type_object, &kdf))
        return bad(errp, "keyslot");
    if (!jstring(af, "type", &type) || strcmp(type, "luks1") != 0 ||
        !jint(af, "stripes", 1, LUKS_MAX_STRIPES, &stripes) ||
        !jstring(af, "hash", &hash) || vdk_hash_parse(hash) < 0)
        return bad(errp, "keyslot anti-forensic splitter");
    if (!jstring(area, "type", &type) || strcmp(type, "raw") != 0 ||
        !ju64(area, "offset", &off) || !ju64(area, "size", &size) ||
        !jstring(area, "encryption", &enc) || !jint(area, "key_size", 1, LUKS_KEY_MAX, &aksz))
        return bad(errp, "keyslot area");
    if (parse_kdf(kdf, ks) < 0)
        return bad(errp, "keyslot kdf");
    ks->priority = jint(j, "priority", 0, 2, &prio) ? (int)prio : -1;
    int r = vdk_cipher_spec_parse2(&ks->area_cipher, enc, (uint32_t)aksz, errp);
    if (r < 0) {
        vdk_error_prepend(errp, "LUKS2 keyslot area");
        return r;
    }
    ks->stripes = (uint32_t)stripes;
    ks->af_hash = (enum vdk_hash)vdk_hash_parse(hash);
    ks->area_offset = off;
    ks->area_size = size;
    uint64_t avail = luks_avail(l);
    uint64_t need = (uint64_t)ksz * (uint64_t)stripes;
    if (off < 2 * l->hdr_size || off % 512 || off > avail || size > avail - off ||
        size > l->payload_offset || off > l->payload_offset - size)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: keyslot area is beyond the end "
                              "of the file or overlaps the metadata");
    if (size < vdk_align_up(need, 512))
        return bad(errp, "keyslot area too small for its key material");
    *key_size = (uint32_t)ksz;
    ks->active = true;
    return 0;
}

static int parse_digest(struct vdk_luks *l, json_object *d, struct vdk_error **errp)
{
    const char *type, *hash;
    int64_t it;
    if (!jstring(d, "type", &type) || strcmp(type, "pbkdf2") != 0)
        return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: unsupported digest type");
    if (!jstring(d, "hash", &hash) || vdk_hash_parse(hash) < 0 ||
        !jint(d, "iterations", 1, VDK_PBKDF2_MAX_ITERS, &it) ||
        !jsalt(d, "salt", l->digest.salt, &l->digest.salt_len, sizeof(l->digest.salt)) ||
        !jsalt(d, "digest", l->digest.digest, &l->digest.digest_len,
               sizeof(l->digest.digest)))
        return bad(errp, "digest");
    l->digest.hash = (enum vdk_hash)vdk_hash_parse(hash);
    l->digest.iterations = (uint32_t)it;
    l->hash = l->digest.hash;
    return 0;
}

/* True when the JSON array arr holds the string id. */
static bool array_has(json_object *arr, const char *id)
{
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (json_object_is_type(e, json_type_string) &&
            strcmp(json_object_get_string(e), id) == 0)
            return true;
    }
    return false;
}

/* Tokens as cryptsetup checks them: numeric ids, each an object with a
   string "type" and a "keyslots" array of existing keyslot ids. */
static int check_tokens(json_object *tokens, json_object *keyslots, struct vdk_error **errp)
{
    json_object_object_foreach(tokens, tid, tok) {
        json_object *ks;
        const char *type;
        char *end;
        long id = strtol(tid, &end, 10);
        if (*end || end == tid || id < 0 || id >= LUKS2_NUM_SLOTS)
            return bad(errp, "token id");
        if (!json_object_is_type(tok, json_type_object) || !jstring(tok, "type", &type) ||
            !jobj(tok, "keyslots", json_type_array, &ks))
            return vdk_error_setf(errp, EINVAL, "LUKS2 header: invalid metadata (token %ld)",
                                  id);
        for (size_t i = 0; i < json_object_array_length(ks); i++) {
            json_object *e = json_object_array_get_idx(ks, i);
            if (!json_object_is_type(e, json_type_string) ||
                !json_object_object_get_ex(keyslots, json_object_get_string(e), NULL))
                return vdk_error_setf(errp, EINVAL, "LUKS2 header: invalid metadata "
                                      "(token %ld)", id);
        }
    }
    return 0;
}

static int parse_json(struct vdk_luks *l, json_object *root, struct vdk_error **errp)
{
    json_object *keyslots, *segments, *digests, *config, *seg, *digest = NULL, *dks, *dsegs;
    uint64_t json_size, seg_off, ivt;
    const char *type, *enc, *size;
    int64_t ss;
    int r;
    if (!jobj(root, "keyslots", json_type_object, &keyslots) ||
        !jobj(root, "segments", json_type_object, &segments) ||
        !jobj(root, "digests", json_type_object, &digests) ||
        !jobj(root, "config", json_type_object, &config))
        return bad(errp, "missing keyslots, segments, digests or config");
    if (!ju64(config, "json_size", &json_size) || json_size != l->hdr_size - LUKS2_BIN_SIZE ||
        !ju64(config, "keyslots_size", &l->keyslots_size))
        return bad(errp, "config");
    json_object *req, *mand;
    if (json_object_object_get_ex(config, "requirements", NULL)) {
        if (!jobj(config, "requirements", json_type_object, &req))
            return bad(errp, "config requirements");
        if (json_object_object_get_ex(req, "mandatory", NULL)) {
            if (!jobj(req, "mandatory", json_type_array, &mand))
                return bad(errp, "config requirements");
            if (json_object_array_length(mand) > 0)
                return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: unsupported mandatory "
                                      "requirements (reencryption in progress?)");
        }
    }
    if (json_object_object_length(segments) != 1 ||
        !jobj(segments, "0", json_type_object, &seg))
        return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: only one segment (\"0\") is "
                              "supported (reencryption in progress?)");
    if (!jstring(seg, "type", &type) || strcmp(type, "crypt") != 0 ||
        !ju64(seg, "offset", &seg_off) || !jstring(seg, "size", &size) ||
        !ju64(seg, "iv_tweak", &ivt) || !jstring(seg, "encryption", &enc) ||
        !jint(seg, "sector_size", 512, 4096, &ss) || !vdk_is_pow2((uint64_t)ss))
        return bad(errp, "segment");
    if (strcmp(size, "dynamic") != 0)
        return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: fixed-size segments are not "
                              "supported");
    if (seg_off > luks_avail(l) || seg_off % (uint64_t)ss)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: payload offset %" PRIu64
                              " is beyond the end of the file or misaligned", seg_off);
    if (l->keyslots_size > seg_off || 2 * l->hdr_size > seg_off - l->keyslots_size)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: the payload overlaps the metadata "
                              "or keyslots area (detached headers are not supported)");
    l->payload_offset = seg_off;
    l->iv_tweak = ivt;
    l->sector_size = (uint32_t)ss;
    json_object_object_foreach(digests, did, dobj) {
        json_object *segs;
        (void)did;
        if (!json_object_is_type(dobj, json_type_object))
            return bad(errp, "digest");
        if (jobj(dobj, "segments", json_type_array, &segs) && array_has(segs, "0")) {
            digest = dobj;
            break;
        }
    }
    if (!digest)
        return bad(errp, "no digest for segment 0");
    if ((r = parse_digest(l, digest, errp)) < 0)
        return r;
    if (!jobj(digest, "keyslots", json_type_array, &dks) ||
        !jobj(digest, "segments", json_type_array, &dsegs))
        return bad(errp, "digest");
    uint32_t key_size = 0;
    int bound = 0;
    json_object_object_foreach(keyslots, kid, kobj) {
        char *end;
        long id = strtol(kid, &end, 10);
        if (*end || end == kid || id < 0 || id >= LUKS2_NUM_SLOTS ||
            !json_object_is_type(kobj, json_type_object))
            return bad(errp, "keyslot id");
        if (!array_has(dks, kid)) {
            l->foreign_slots = true; /* another volume key: not usable here */
            continue;
        }
        uint32_t ksz = 0;
        if ((r = parse_keyslot(l, kobj, &l->slots[id], &ksz, errp)) < 0)
            return r;
        if (key_size && ksz != key_size)
            return bad(errp, "keyslots disagree on the key size");
        key_size = ksz;
        bound++;
    }
    /* Every keyslot the digest names must exist. */
    for (size_t i = 0; i < json_object_array_length(dks); i++) {
        json_object *e = json_object_array_get_idx(dks, i), *tmp;
        if (!json_object_is_type(e, json_type_string) ||
            !json_object_object_get_ex(keyslots, json_object_get_string(e), &tmp))
            return bad(errp, "digest names a missing keyslot");
    }
    if (!bound)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: the digest matches no keyslot");
    if ((r = vdk_cipher_spec_parse2(&l->spec, enc, key_size, errp)) < 0) {
        vdk_error_prepend(errp, "LUKS2 segment");
        return r;
    }
    json_object *tokens;
    if (!jobj(root, "tokens", json_type_object, &tokens))
        return bad(errp, "\"tokens\" is not an object");
    if ((r = check_tokens(tokens, keyslots, errp)) < 0)
        return r;
    /* Both outlive root: take our own references. */
    l->tokens = json_object_get(tokens);
    l->config = json_object_get(config);
    return 0;
}

/* Read, checksum and parse the copy at off; expected magic m. */
static int load_copy(struct vdk_luks *l, uint64_t off, const uint8_t *m,
                     json_object **rootp, uint8_t *bin, struct vdk_error **errp)
{
    int r = luks_read(l, off, bin, LUKS2_BIN_SIZE, errp);
    if (r < 0)
        return r;
    if (memcmp(bin, m, LUKS_MAGIC_LEN) != 0)
        return vdk_error_setf(errp, EINVAL, "not a LUKS header (bad magic)");
    if (bin[B_VERSION] != 0 || bin[B_VERSION + 1] != 2)
        return vdk_error_setf(errp, ENOTSUP, "unsupported LUKS version %u",
                              (unsigned)bin[B_VERSION] << 8 | bin[B_VERSION + 1]);
    uint64_t hs = be64(bin + B_HDR_SIZE);
    if (!valid_hdr_size(hs) || be64(bin + B_HDR_OFFSET) != off)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: invalid header size or offset");
    char alg[33];
    memcpy(alg, bin + B_CSUM_ALG, 32);
    alg[32] = 0;
    int h = vdk_hash_parse(alg);
    if (h < 0)
        return vdk_error_setf(errp, ENOTSUP, "LUKS2 header: unsupported checksum '%s'", alg);
    if (hs > luks_avail(l) || off > luks_avail(l) - hs)
        return vdk_error_setf(errp, EINVAL, "LUKS2 header: metadata is beyond the end "
                              "of the file");
    uint8_t *area = malloc(hs);
    if (!area)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    if ((r = luks_read(l, off, area, hs, errp)) < 0)
        goto out;
    uint8_t want[VDK_HASH_MAX_LEN], got[VDK_HASH_MAX_LEN];
    size_t hl = vdk_hash_len((enum vdk_hash)h);
    memcpy(want, area + B_CSUM, hl);
    memset(area + B_CSUM, 0, 64);
    if (vdk_hash_digest((enum vdk_hash)h, area, hs, got) < 0 || memcmp(want, got, hl)) {
        r = vdk_error_setf(errp, EINVAL, "LUKS2 header: checksum mismatch");
        goto out;
    }
    const char *js = (const char *)area + LUKS2_BIN_SIZE;
    size_t jl = strnlen(js, hs - LUKS2_BIN_SIZE);
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *root = tok ? json_tokener_parse_ex(tok, js, (int)jl) : NULL;
    if (!root || json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        json_tokener_free(tok);
        r = vdk_error_setf(errp, EINVAL, "LUKS2 header: malformed JSON metadata");
        goto out;
    }
    json_tokener_free(tok);
    *rootp = root;
    r = 0;
out:
    free(area);
    return r;
}

int luks2_load(struct vdk_luks *l, struct vdk_error **errp)
{
    static const uint64_t offs[] = { 16384, 32768, 65536, 131072, 262144, 524288,
                                     1048576, 2097152, 4194304 };
    uint8_t bin[2][LUKS2_BIN_SIZE];
    memset(bin, 0, sizeof(bin));
    json_object *root[2] = { NULL, NULL };
    struct vdk_error *perr = NULL, *serr = NULL;
    int r = load_copy(l, 0, magic1, &root[0], bin[0], &perr);
    /* The secondary sits at hdr_size; if the primary is unreadable, try
       each size LUKS2 allows. */
    uint64_t hs0 = be64(bin[0] + B_HDR_SIZE);
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        uint64_t off = (r == 0 || valid_hdr_size(hs0)) ? hs0 : offs[i];
        struct vdk_error *e = NULL;
        if (load_copy(l, off, magic2, &root[1], bin[1], &e) == 0) {
            vdk_error_free(serr);
            serr = NULL;
            break;
        }
        if (!serr)
            serr = e;
        else
            vdk_error_free(e);
        if (r == 0 || valid_hdr_size(hs0))
            break;
    }
    int use;
    if (root[0] && root[1])
        use = be64(bin[1] + B_SEQID) > be64(bin[0] + B_SEQID) ? 1 : 0;
    else
        use = root[0] ? 0 : root[1] ? 1 : -1;
    if (use < 0) {
        vdk_error_propagate(errp, perr);
        vdk_error_free(serr);
        return -EINVAL;
    }
    vdk_error_free(perr);
    vdk_error_free(serr);
    const uint8_t *b = bin[use];
    l->version = 2;
    l->nslots = LUKS2_NUM_SLOTS;
    l->hdr_size = be64(b + B_HDR_SIZE);
    l->seqid = be64(b + B_SEQID);
    memcpy(l->label, b + B_LABEL, 48);
    memcpy(l->subsystem, b + B_SUBSYSTEM, 48);
    memcpy(l->csum_alg, b + B_CSUM_ALG, 32);
    memcpy(l->uuid, b + B_UUID, 40);
    r = parse_json(l, root[use], errp);
    json_object_put(root[0]);
    json_object_put(root[1]);
    return r;
}

/* ---- writing ---- */

static json_object *jnew_u64(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%" PRIu64, v);
    return json_object_new_string(s);
}

static json_object *jnew_b64(const uint8_t *b, size_t n)
{
    char *s = luks_b64_encode(b, n);
    json_object *o = s ? json_object_new_string(s) : NULL;
    free(s);
    return o;
}

static json_object *build_json(struct vdk_luks *l)
{
    json_object *root = json_object_new_object(), *ks = json_object_new_object();
    json_object *segs = json_object_new_object(), *digs = json_object_new_object();
    json_object *cfg = NULL, *dks = json_object_new_array();
    /* Keep config flags (allow-discards, ...) as read. */
    if (!l->config || json_object_deep_copy(l->config, &cfg, NULL) != 0)
        cfg = json_object_new_object();
    char mode[40], enc[48], id[16];
    vdk_cipher_spec_mode_name(&l->spec, mode, sizeof(mode));
    snprintf(enc, sizeof(enc), "aes-%s", mode);
    for (int i = 0; i < LUKS2_NUM_SLOTS; i++) {
        const struct luks_keyslot *s = &l->slots[i];
        if (!s->active)
            continue;
        json_object *o = json_object_new_object(), *af = json_object_new_object();
        json_object *area = json_object_new_object(), *kdf = json_object_new_object();
        char aenc[48];
        vdk_cipher_spec_mode_name(&s->area_cipher, mode, sizeof(mode));
        snprintf(aenc, sizeof(aenc), "aes-%s", mode);
        json_object_object_add(o, "type", json_object_new_string("luks2"));
        json_object_object_add(o, "key_size", json_object_new_int((int)l->spec.key_len));
        json_object_object_add(af, "type", json_object_new_string("luks1"));
        json_object_object_add(af, "stripes", json_object_new_int((int)s->stripes));
        json_object_object_add(af, "hash", json_object_new_string(vdk_hash_name(s->af_hash)));
        json_object_object_add(o, "af", af);
        json_object_object_add(area, "type", json_object_new_string("raw"));
        json_object_object_add(area, "offset", jnew_u64(s->area_offset));
        json_object_object_add(area, "size", jnew_u64(s->area_size));
        json_object_object_add(area, "encryption", json_object_new_string(aenc));
        json_object_object_add(area, "key_size",
                               json_object_new_int((int)s->area_cipher.key_len));
        json_object_object_add(o, "area", area);
        json_object_object_add(kdf, "type",
                               json_object_new_string(vdk_kdf_type_name(s->kdf.type)));
        if (s->kdf.type == VDK_KDF_PBKDF2) {
            json_object_object_add(kdf, "hash",
                                   json_object_new_string(vdk_hash_name(s->kdf.hash)));
            json_object_object_add(kdf, "iterations",
                                   json_object_new_int64(s->kdf.iterations));
        } else {
            json_object_object_add(kdf, "time", json_object_new_int64(s->kdf.iterations));
            json_object_object_add(kdf, "memory", json_object_new_int64(s->kdf.memory_kib));
            json_object_object_add(kdf, "cpus", json_object_new_int64(s->kdf.parallel));
        }
        json_object_object_add(kdf, "salt", jnew_b64(s->salt, s->salt_len));
        json_object_object_add(o, "kdf", kdf);
        if (s->priority >= 0)
            json_object_object_add(o, "priority", json_object_new_int(s->priority));
        snprintf(id, sizeof(id), "%d", i);
        json_object_object_add(ks, id, o);
        json_object_array_add(dks, json_object_new_string(id));
    }
    json_object *seg = json_object_new_object();
    json_object_object_add(seg, "type", json_object_new_string("crypt"));
    json_object_object_add(seg, "offset", jnew_u64(l->payload_offset));
    json_object_object_add(seg, "size", json_object_new_string("dynamic"));
    json_object_object_add(seg, "iv_tweak", jnew_u64(l->iv_tweak));
    json_object_object_add(seg, "encryption", json_object_new_string(enc));
    json_object_object_add(seg, "sector_size", json_object_new_int((int)l->sector_size));
    json_object_object_add(segs, "0", seg);
    json_object *dg = json_object_new_object(), *dsegs = json_object_new_array();
    json_object_array_add(dsegs, json_object_new_string("0"));
    json_object_object_add(dg, "type", json_object_new_string("pbkdf2"));
    json_object_object_add(dg, "keyslots", dks);
    json_object_object_add(dg, "segments", dsegs);
    json_object_object_add(dg, "hash", json_object_new_string(vdk_hash_name(l->digest.hash)));
    json_object_object_add(dg, "iterations", json_object_new_int64(l->digest.iterations));
    json_object_object_add(dg, "salt", jnew_b64(l->digest.salt, l->digest.salt_len));
    json_object_object_add(dg, "digest", jnew_b64(l->digest.digest, l->digest.digest_len));
    json_object_object_add(digs, "0", dg);
    json_object_object_add(cfg, "json_size", jnew_u64(l->hdr_size - LUKS2_BIN_SIZE));
    json_object_object_add(cfg, "keyslots_size", jnew_u64(l->keyslots_size));
    json_object_object_add(root, "keyslots", ks);
    json_object_object_add(root, "tokens",
                           l->tokens ? json_object_get(l->tokens) : json_object_new_object());
    json_object_object_add(root, "segments", segs);
    json_object_object_add(root, "digests", digs);
    json_object_object_add(root, "config", cfg);
    return root;
}

static int write_copy(struct vdk_luks *l, uint64_t off, const uint8_t *m, const char *js,
                      size_t jl, struct vdk_error **errp)
{
    uint8_t *area = calloc(1, l->hdr_size);
    if (!area)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    memcpy(area + B_MAGIC, m, LUKS_MAGIC_LEN);
    area[B_VERSION + 1] = 2;
    put_be64(area + B_HDR_SIZE, l->hdr_size);
    put_be64(area + B_SEQID, l->seqid);
    memcpy(area + B_LABEL, l->label, strnlen(l->label, 48));
    memcpy(area + B_CSUM_ALG, "sha256", 6);
    int r = vdk_random_bytes(area + B_SALT, 64);
    memcpy(area + B_UUID, l->uuid, strnlen(l->uuid, 40));
    memcpy(area + B_SUBSYSTEM, l->subsystem, strnlen(l->subsystem, 48));
    put_be64(area + B_HDR_OFFSET, off);
    memcpy(area + LUKS2_BIN_SIZE, js, jl);
    if (r == 0)
        r = vdk_hash_digest(VDK_HASH_SHA256, area, l->hdr_size, area + B_CSUM);
    if (r < 0)
        r = vdk_error_setf(errp, EIO, "cannot checksum the LUKS2 header");
    else
        r = luks_write(l, off, area, l->hdr_size, errp);
    free(area);
    return r;
}

int luks2_write_header(struct vdk_luks *l, struct vdk_error **errp)
{
    json_object *root = build_json(l);
    if (!root)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    size_t jl = js ? strlen(js) : 0;
    int r;
    if (!js || jl >= l->hdr_size - LUKS2_BIN_SIZE) {
        r = vdk_error_setf(errp, ENOSPC, "LUKS2 metadata does not fit the JSON area");
        goto out;
    }
    l->seqid++;
    /* Secondary first: if we stop half-way, the other copy is whole. */
    r = write_copy(l, l->hdr_size, magic2, js, jl, errp);
    if (r == 0)
        r = write_copy(l, 0, magic1, js, jl, errp);
out:
    json_object_put(root);
    return r;
}
