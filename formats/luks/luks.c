/* SPDX-License-Identifier: MIT */
/*
 * LUKS header API shared by the luks driver and qcow2 encryption: create
 * options, format, open/unlock, payload encryption, info and keyslot
 * management.  See luks.h for the calling sequence.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/luks/luks.h"
#include "vdk/secret.h"

static const char *const version_names[] = { "1", "2", NULL };
static const char *const alg_names[] = { "aes-128", "aes-192", "aes-256", NULL };
static const char *const mode_names[] = { "xts", "cbc", "ecb", NULL };
static const char *const ivgen_names[] = { "plain64", "plain", "essiv", NULL };
static const char *const hash_names[] = { "sha1", "sha224", "sha256", "sha384", "sha512",
                                          "ripemd160", NULL };
static const char *const kdf_names[] = { "pbkdf2", "argon2i", "argon2id", NULL };
static const char *const ssize_names[] = { "512", "1024", "2048", "4096", NULL };

/* The luks driver's create options, in qemu's order and with qemu's help
   text; no printed defaults, so "Formatting ..." lines match qemu-img's.
   qcow2 reads the same keys (except size) under "encrypt.". */
const struct vdk_opt_desc vdk_luks_create_opt_table[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "key-secret", VDK_OPT_STRING, "ID of the secret that provides the keyslot passphrase",
      NULL, NULL },
    { "cipher-alg", VDK_OPT_ENUM, "Name of encryption cipher algorithm", NULL, alg_names },
    { "cipher-mode", VDK_OPT_ENUM, "Name of encryption cipher mode", NULL, mode_names },
    { "ivgen-alg", VDK_OPT_ENUM, "Name of IV generator algorithm", NULL, ivgen_names },
    { "ivgen-hash-alg", VDK_OPT_ENUM, "Name of IV generator hash algorithm", NULL,
      hash_names },
    { "hash-alg", VDK_OPT_ENUM, "Name of encryption hash algorithm", NULL, hash_names },
    { "iter-time", VDK_OPT_NUMBER, "Time to spend in PBKDF in milliseconds", NULL, NULL },
    { "format-version", VDK_OPT_ENUM, "LUKS version: 1 (default, QEMU's) or 2", NULL,
      version_names },
    { "pbkdf", VDK_OPT_ENUM, "LUKS2 key derivation function (default argon2id)", NULL,
      kdf_names },
    { "pbkdf-memory", VDK_OPT_NUMBER,
      "LUKS2 argon2 memory cost in KiB (default 1048576, at most half the RAM)", NULL, NULL },
    { "pbkdf-parallel", VDK_OPT_NUMBER, "LUKS2 argon2 threads (default: CPUs, at most 4)",
      NULL, NULL },
    { "pbkdf-force-iterations", VDK_OPT_NUMBER,
      "PBKDF2 iterations or argon2 time cost, instead of measuring iter-time", NULL, NULL },
    { "sector-size", VDK_OPT_ENUM, "LUKS2 payload sector size (default 512)", NULL,
      ssize_names },
    { NULL, 0, NULL, NULL, NULL },
};

int vdk_luks_params_from_opts(struct vdk_luks_params *p, char **secret_id,
                              struct vdk_opts *o, struct vdk_error **errp)
{
    uint64_t it, mem, par, forced;
    int v, alg, mode, iv, ivh, h, kdf, ss, r;
    memset(p, 0, sizeof(*p));
    *secret_id = NULL;
    if ((v = vdk_opts_get_enum(o, "format-version", version_names, 0, errp)) < 0 ||
        (alg = vdk_opts_get_enum(o, "cipher-alg", alg_names, 2, errp)) < 0 ||
        (mode = vdk_opts_get_enum(o, "cipher-mode", mode_names, 0, errp)) < 0 ||
        (iv = vdk_opts_get_enum(o, "ivgen-alg", ivgen_names, 0, errp)) < 0 ||
        (ivh = vdk_opts_get_enum(o, "ivgen-hash-alg", hash_names, 2, errp)) < 0 ||
        (h = vdk_opts_get_enum(o, "hash-alg", hash_names, 2, errp)) < 0 ||
        (kdf = vdk_opts_get_enum(o, "pbkdf", kdf_names, 2, errp)) < 0 ||
        (ss = vdk_opts_get_enum(o, "sector-size", ssize_names, 0, errp)) < 0)
        return -EINVAL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* argon2 memory default: 1 GiB, at most half the RAM (as cryptsetup). */
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    uint64_t memdef = 1048576;
    if (pages > 0 && psz > 0 && (uint64_t)pages * (uint64_t)psz / 2048 < memdef)
        memdef = (uint64_t)pages * (uint64_t)psz / 2048;
    if ((r = vdk_opts_get_uint(o, "iter-time", 2000, &it, errp)) < 0 ||
        (r = vdk_opts_get_uint(o, "pbkdf-memory", memdef, &mem, errp)) < 0 ||
        (r = vdk_opts_get_uint(o, "pbkdf-parallel", ncpu > 0 && ncpu < 4 ? (uint64_t)ncpu : 4,
                               &par, errp)) < 0 ||
        (r = vdk_opts_get_uint(o, "pbkdf-force-iterations", 0, &forced, errp)) < 0)
        return r;
    p->version = v + 1;
    const char *mname = mode_names[mode];
    char mstr[48];
    if (mode == 2)
        snprintf(mstr, sizeof(mstr), "ecb");
    else if (iv == 2)
        snprintf(mstr, sizeof(mstr), "%s-essiv:%s", mname, hash_names[ivh]);
    else
        snprintf(mstr, sizeof(mstr), "%s-%s", mname, ivgen_names[iv]);
    uint32_t klen = (uint32_t)(16 + 8 * alg) * (mode == 0 ? 2 : 1);
    if ((r = vdk_cipher_spec_parse(&p->spec, "aes", mstr, klen, errp)) < 0) {
        if (mode == 0 && alg == 1)
            vdk_error_prepend(errp, "aes-192 has no XTS mode");
        return r;
    }
    p->hash = (enum vdk_hash)h;
    if (it < 1 || it > 3600000)
        return vdk_error_setf(errp, EINVAL, "iter-time must be 1..3600000 ms");
    p->iter_time_ms = (uint32_t)it;
    if (forced > VDK_PBKDF2_MAX_ITERS)
        return vdk_error_setf(errp, EINVAL, "pbkdf-force-iterations is too large");
    p->forced_iters = (uint32_t)forced;
    p->kdf.type = p->version == 1 ? VDK_KDF_PBKDF2 : (enum vdk_kdf_type)kdf;
    p->kdf.hash = p->hash;
    if (p->version == 1 && vdk_opts_has(o, "pbkdf") && kdf != 0)
        return vdk_error_setf(errp, EINVAL, "LUKS1 supports only the pbkdf2 key derivation");
    if (mem < VDK_ARGON2_MIN_MEMORY || mem > VDK_ARGON2_MAX_MEMORY)
        return vdk_error_setf(errp, EINVAL, "pbkdf-memory must be %u..%u KiB",
                              VDK_ARGON2_MIN_MEMORY, VDK_ARGON2_MAX_MEMORY);
    if (par < 1 || par > VDK_ARGON2_MAX_PARALLEL)
        return vdk_error_setf(errp, EINVAL, "pbkdf-parallel must be 1..%u",
                              VDK_ARGON2_MAX_PARALLEL);
    if (p->kdf.type != VDK_KDF_PBKDF2 && forced && forced < 4)
        return vdk_error_setf(errp, EINVAL, "argon2 needs a time cost of at least 4");
    p->kdf.memory_kib = (uint32_t)mem;
    p->kdf.parallel = (uint32_t)par;
    p->sector_size = 512u << ss;
    if (p->version == 1 && p->sector_size != 512)
        return vdk_error_setf(errp, EINVAL, "LUKS1 supports only 512-byte sectors");
    const char *sid = vdk_opts_get(o, "key-secret");
    if (sid && !(*secret_id = strdup(sid)))
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    return 0;
}

static uint64_t luks1_split_size(uint32_t key_len)
{
    return vdk_align_up((uint64_t)key_len * LUKS_STRIPES, 4096);
}

uint64_t vdk_luks_header_size(const struct vdk_luks_params *p)
{
    if (p->version == 2)
        return LUKS2_PAYLOAD_DEF;
    /* QEMU's layout: keyslot areas from 4 KiB, 4 KiB aligned, then data. */
    return 4096 + LUKS1_NUM_SLOTS * luks1_split_size(p->spec.key_len);
}

int vdk_luks_get_secret(const char *id, char **pass, size_t *len, struct vdk_error **errp)
{
    return vdk_secret_lookup(id, "LUKS passphrase", pass, len, errp);
}

static void make_uuid(char *out)
{
    uint8_t u[16];
    if (vdk_random_bytes(u, sizeof(u)) < 0)
        memset(u, 0x5a, sizeof(u));
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    snprintf(out, 41, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
             u[12], u[13], u[14], u[15]);
}

void vdk_luks_close(struct vdk_luks *l)
{
    if (!l)
        return;
    vdk_cipher_free(l->cipher);
    vdk_secure_free(l->key, l->spec.key_len);
    json_object_put(l->tokens);
    json_object_put(l->config);
    OPENSSL_cleanse(l, sizeof(*l));
    free(l);
}

static int write_header(struct vdk_luks *l, struct vdk_error **errp)
{
    return l->version == 1 ? luks1_write_header(l, errp) : luks2_write_header(l, errp);
}

int vdk_luks_format(struct vdk_luks **out, struct vdk_node *file, uint64_t base,
                    const struct vdk_luks_params *p, const char *pass, size_t passlen,
                    struct vdk_error **errp)
{
    struct vdk_luks *l = calloc(1, sizeof(*l));
    int r;
    if (!l)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    l->file = file;
    l->base = base;
    l->version = p->version;
    l->spec = p->spec;
    l->hash = p->hash;
    l->sector_size = p->sector_size;
    l->payload_offset = vdk_luks_header_size(p);
    make_uuid(l->uuid);
    if (p->version == 1) {
        l->nslots = LUKS1_NUM_SLOTS;
        for (int i = 0; i < LUKS1_NUM_SLOTS; i++) {
            l->slots[i].area_offset = 4096 + (uint64_t)i * luks1_split_size(p->spec.key_len);
            l->slots[i].stripes = LUKS_STRIPES;
            l->slots[i].priority = -1;
        }
    } else {
        l->nslots = LUKS2_NUM_SLOTS;
        l->hdr_size = LUKS2_HDR_SIZE_DEF;
        l->keyslots_size = l->payload_offset - 2 * l->hdr_size;
        strcpy(l->csum_alg, "sha256");
        for (int i = 0; i < LUKS2_NUM_SLOTS; i++)
            l->slots[i].priority = -1;
    }
    l->key = vdk_secure_alloc(p->spec.key_len);
    if (!l->key) {
        r = vdk_error_setf(errp, ENOMEM, "out of memory");
        goto fail;
    }
    /* OpenSSL refuses XTS keys with equal halves: draw again (never, in
       practice, but cheap to be sure). */
    do {
        if (vdk_random_bytes(l->key, p->spec.key_len) < 0) {
            r = vdk_error_setf(errp, EIO, "no random bytes for the volume key");
            goto fail;
        }
    } while (p->spec.mode == VDK_CIPHER_XTS &&
             memcmp(l->key, l->key + p->spec.key_len / 2, p->spec.key_len / 2) == 0);
    if ((r = vdk_cipher_new(&l->cipher, &l->spec, l->key, errp)) < 0 ||
        (r = luks_digest_make(l, p->iter_time_ms, errp)) < 0 ||
        (r = luks_keyslot_store(l, 0, pass, passlen, &p->kdf, p->iter_time_ms,
                                p->forced_iters, errp)) < 0 ||
        (r = write_header(l, errp)) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    vdk_luks_close(l);
    return r;
}

int vdk_luks_open(struct vdk_luks **out, struct vdk_node *file, uint64_t base,
                  uint64_t limit, const char *pass, size_t passlen, unsigned flags,
                  struct vdk_error **errp)
{
    struct vdk_luks *l = calloc(1, sizeof(*l));
    uint8_t h[LUKS1_HDR_SIZE];
    int r;
    if (!l)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    l->file = file;
    l->base = base;
    l->limit = limit;
    for (int i = 0; i < LUKS2_NUM_SLOTS; i++)
        l->slots[i].priority = -1;
    vdk_luks_set_limits(l, NULL);
    if (luks_avail(l) < sizeof(h)) {
        r = vdk_error_setf(errp, EINVAL, "not a LUKS image (file too short)");
        goto fail;
    }
    if ((r = luks_read(l, 0, h, sizeof(h), errp)) < 0)
        goto fail;
    unsigned ver = (unsigned)h[6] << 8 | h[7];
    if (ver == 1)
        r = luks1_parse(l, h, errp);
    else if (ver == 2 || memcmp(h, "LUKS\xba\xbe", 6) != 0)
        r = luks2_load(l, errp); /* may be a LUKS2 with a damaged primary */
    else
        r = vdk_error_setf(errp, ENOTSUP, "unsupported LUKS version %u", ver);
    if (r < 0)
        goto fail;
    if (!(flags & VDK_LUKS_NO_KEY) && (r = luks_unlock(l, pass, passlen, errp)) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    vdk_luks_close(l);
    return r;
}

void vdk_luks_set_limits(struct vdk_luks *l, const struct vdk_luks_limits *lim)
{
    static const struct vdk_luks_limits def = {
        VDK_LUKS_MAX_ITERATIONS_DEF, VDK_LUKS_MAX_MEMORY_DEF, VDK_LUKS_MAX_WORK_DEF, "" };
    l->lim = lim ? *lim : def;
}

int vdk_luks_limits_from_opts(struct vdk_luks_limits *lim, struct vdk_opts *opts,
                              const char *prefix, struct vdk_error **errp)
{
    char k[3][64];
    snprintf(k[0], sizeof(k[0]), "%smax-pbkdf-iterations", prefix);
    snprintf(k[1], sizeof(k[1]), "%smax-pbkdf-memory", prefix);
    snprintf(k[2], sizeof(k[2]), "%smax-pbkdf-work", prefix);
    int r;
    if ((r = vdk_opts_get_uint(opts, k[0], VDK_LUKS_MAX_ITERATIONS_DEF, &lim->iterations,
                               errp)) < 0 ||
        (r = vdk_opts_get_uint(opts, k[1], VDK_LUKS_MAX_MEMORY_DEF, &lim->memory_kib,
                               errp)) < 0 ||
        (r = vdk_opts_get_uint(opts, k[2], VDK_LUKS_MAX_WORK_DEF, &lim->work, errp)) < 0)
        return r;
    lim->prefix = prefix;
    return 0;
}

int vdk_luks_unlock(struct vdk_luks *l, const char *pass, size_t passlen,
                    struct vdk_error **errp)
{
    if (l->key)
        return 0;
    return luks_unlock(l, pass, passlen, errp);
}

int vdk_luks_encrypt(struct vdk_luks *l, uint64_t iv_sector, const void *in, void *out,
                     size_t len)
{
    return vdk_cipher_encrypt(l->cipher, iv_sector + l->iv_tweak, l->sector_size, in, out,
                              len);
}

int vdk_luks_decrypt(struct vdk_luks *l, uint64_t iv_sector, const void *in, void *out,
                     size_t len)
{
    return vdk_cipher_decrypt(l->cipher, iv_sector + l->iv_tweak, l->sector_size, in, out,
                              len);
}

int vdk_luks_info(struct vdk_luks *l, struct json_object **out)
{
    static const char *const ivnames[] = { "plain64", "plain", "essiv", "plain64" };
    static const char *const modes[] = { "xts", "cbc", "ecb" };
    json_object *d = json_object_new_object(), *slots = json_object_new_array();
    char alg[16];
    if (!d || !slots) {
        json_object_put(d);
        json_object_put(slots);
        return -ENOMEM;
    }
    snprintf(alg, sizeof(alg), "aes-%u", vdk_cipher_spec_aes_bits(&l->spec));
    /* Member order as qemu-img prints it. */
    json_object_object_add(d, "ivgen-alg", json_object_new_string(ivnames[l->spec.ivgen]));
    json_object_object_add(d, "hash-alg", json_object_new_string(vdk_hash_name(l->hash)));
    json_object_object_add(d, "cipher-alg", json_object_new_string(alg));
    json_object_object_add(d, "uuid", json_object_new_string(l->uuid));
    if (l->spec.ivgen == VDK_IVGEN_ESSIV)
        json_object_object_add(d, "ivgen-hash-alg",
                               json_object_new_string(vdk_hash_name(l->spec.ivgen_hash)));
    json_object_object_add(d, "cipher-mode", json_object_new_string(modes[l->spec.mode]));
    for (int i = 0; i < l->nslots; i++) {
        const struct luks_keyslot *ks = &l->slots[i];
        if (l->version == 2 && !ks->active)
            continue;
        json_object *s = json_object_new_object();
        json_object_object_add(s, "active", json_object_new_boolean(ks->active));
        if (ks->active) {
            json_object_object_add(s, "iters", json_object_new_int64(ks->kdf.iterations));
            json_object_object_add(s, "stripes", json_object_new_int64(ks->stripes));
        }
        json_object_object_add(s, "key-offset", json_object_new_int64((int64_t)ks->area_offset));
        if (l->version == 2)
            json_object_object_add(s, "kdf",
                                   json_object_new_string(vdk_kdf_type_name(ks->kdf.type)));
        json_object_array_add(slots, s);
    }
    json_object_object_add(d, "slots", slots);
    json_object_object_add(d, "payload-offset",
                           json_object_new_int64((int64_t)l->payload_offset));
    json_object_object_add(d, "master-key-iters", json_object_new_int64(l->digest.iterations));
    if (l->version == 2) {
        json_object_object_add(d, "format-version", json_object_new_int(2));
        json_object_object_add(d, "sector-size", json_object_new_int((int)l->sector_size));
    }
    *out = d;
    return 0;
}
