/* SPDX-License-Identifier: MIT */
/*
 * Structure-aware mutator for fuzz-luks2: byte
 * flips rarely give JSON that parses with a wrong type, so most mutations
 * parse the primary copy's JSON area, change one node of the tree -- its
 * type, value, key or nesting -- serialise it into both header copies and
 * reseal both checksums.  Inputs without parseable JSON fall back to
 * byte mutations (fuzz-mutator.h).
 */
#ifndef VDK_FUZZ_LUKS2_MUTATOR_H
#define VDK_FUZZ_LUKS2_MUTATOR_H

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-mutator.h"

/* Names LUKS2 metadata uses: renaming a key to one of these (or a value
   to one) reaches the parser's lookups. */
static const char *const luks2_names[] = {
    "keyslots", "tokens", "segments", "digests", "config", "type", "offset", "size",
    "iterations", "time", "memory", "cpus", "salt", "hash", "stripes", "key_size", "area",
    "af", "kdf", "encryption", "sector_size", "iv_tweak", "json_size", "keyslots_size",
    "requirements", "mandatory", "priority", "digest", "0", "1", "31", "32", "-1",
    "dynamic", "crypt", "luks2", "luks1", "raw", "pbkdf2", "argon2id", "argon2i",
    "aes-xts-plain64", "sha256", "18446744073709551615", "16777216", "4096",
};
#define LUKS2_NNAMES (sizeof(luks2_names) / sizeof(luks2_names[0]))

struct jslot {                    /* where a node sits in its parent */
    json_object *parent;          /* object or array; NULL for the root */
    const char *key;              /* object member name */
    size_t idx;                   /* array index */
};

static void jcollect(json_object *o, json_object *parent, const char *key, size_t idx,
                     struct jslot *out, size_t *n, size_t max)
{
    if (*n >= max)
        return;
    out[(*n)++] = (struct jslot){ parent, key, idx };
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
            jcollect(v, o, k, 0, out, n, max);
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            jcollect(json_object_array_get_idx(o, i), o, NULL, i, out, n, max);
    }
}

static json_object *jget(const struct jslot *s, json_object *root)
{
    if (!s->parent)
        return root;
    if (s->key) {
        json_object *v = NULL;
        json_object_object_get_ex(s->parent, s->key, &v);
        return v;
    }
    return json_object_array_get_idx(s->parent, s->idx);
}

/* Put v (owned) where s points; the root is never replaced. */
static void jput(const struct jslot *s, json_object *v)
{
    if (!s->parent) {
        json_object_put(v);
        return;
    }
    if (s->key) {
        char *k = strdup(s->key);          /* the old key dies with its value */
        if (k)
            json_object_object_add(s->parent, k, v);
        else
            json_object_put(v);
        free(k);
    } else {
        json_object_array_put_idx(s->parent, s->idx, v);
    }
}

static json_object *jrandom_value(unsigned *rs)
{
    static const int64_t ints[] = { 0, 1, -1, 4, 512, 4000, 4096, 32768, 1 << 20,
                                    INT32_MAX, INT64_MAX, INT64_MIN, 1070000000 };
    switch (rand_r(rs) % 9) {
    case 0: return json_object_new_string(luks2_names[rand_r(rs) % LUKS2_NNAMES]);
    case 1: return json_object_new_int64(ints[rand_r(rs) % (sizeof(ints) / sizeof(ints[0]))]);
    case 2: return json_object_new_double(1.5);
    case 3: return json_object_new_boolean(rand_r(rs) & 1);
    case 4: return NULL; /* JSON null */
    case 5: return json_object_new_array();
    case 6: return json_object_new_object();
    case 7: {
        char b[24];
        snprintf(b, sizeof(b), "%u%u", rand_r(rs), rand_r(rs));
        return json_object_new_string(b);
    }
    default: return json_object_new_string("");
    }
}

/* One structural change to the tree. */
static void jmutate(json_object *root, unsigned *rs)
{
    struct jslot slots[512];
    size_t n = 0;
    jcollect(root, NULL, NULL, 0, slots, &n, 512);
    const struct jslot *s = &slots[rand_r(rs) % n];
    json_object *cur = jget(s, root);
    switch (rand_r(rs) % 6) {
    case 0: /* change type or value */
        jput(s, jrandom_value(rs));
        break;
    case 1: /* delete */
        if (s->parent && s->key)
            json_object_object_del(s->parent, s->key);
        else if (s->parent)
            json_object_array_del_idx(s->parent, s->idx, 1);
        break;
    case 2: /* rename a member */
        if (s->parent && s->key) {
            json_object *v = json_object_get(cur);
            json_object_object_del(s->parent, s->key);
            json_object_object_add(s->parent, luks2_names[rand_r(rs) % LUKS2_NNAMES], v);
        }
        break;
    case 3: { /* nest: wrap in an array or an object */
        json_object *w = (rand_r(rs) & 1) ? json_object_new_array() : json_object_new_object();
        json_object *v = json_object_get(cur);
        if (json_object_is_type(w, json_type_array))
            json_object_array_add(w, v);
        else
            json_object_object_add(w, luks2_names[rand_r(rs) % LUKS2_NNAMES], v);
        jput(s, w);
        break;
    }
    case 4: { /* copy another subtree here (deep copy: no shared nodes) */
        json_object *src = jget(&slots[rand_r(rs) % n], root), *dup = NULL;
        if (src != cur && json_object_deep_copy(src, &dup, NULL) == 0)
            jput(s, dup);
        break;
    }
    default: /* add a member */
        if (json_object_is_type(cur, json_type_object))
            json_object_object_add(cur, luks2_names[rand_r(rs) % LUKS2_NNAMES],
                                   jrandom_value(rs));
        else if (json_object_is_type(cur, json_type_array))
            json_object_array_add(cur, jrandom_value(rs));
        break;
    }
}

/* One structural change, written into both header copies and resealed;
   false when the primary copy holds no JSON object. */
static bool luks2_step(struct fmut *m)
{
    uint64_t hs = m->size >= LUKS2_BIN_SIZE ? fm_get(m, 8, 8, true) : 0;
    if (hs <= LUKS2_BIN_SIZE || hs > LUKS2_HDR_SIZE_MAX || hs > m->size || hs > m->size - hs)
        return false;
    size_t area = (size_t)hs - LUKS2_BIN_SIZE;
    const char *js = (const char *)m->data + LUKS2_BIN_SIZE;
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *root = tok ? json_tokener_parse_ex(tok, js, (int)strnlen(js, area)) : NULL;
    json_tokener_free(tok);
    if (!root || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return false;
    }
    jmutate(root, &m->rs);
    const char *out = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    size_t ol = out ? strlen(out) : area;
    if (ol < area) {
        for (int c = 0; c < 2; c++) {   /* both copies, resealed */
            uint8_t *h = m->data + (c ? hs : 0);
            memset(h + LUKS2_BIN_SIZE, 0, area);
            memcpy(h + LUKS2_BIN_SIZE, out, ol);
            h[264] &= 0xfe;             /* the target reseals too */
            memset(h + 448, 0, 64);
            (void)vdk_hash_digest(VDK_HASH_SHA256, h, hs, h + 448);
        }
    }
    json_object_put(root);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, luks2_step, NULL);
}

#endif /* VDK_FUZZ_LUKS2_MUTATOR_H */
