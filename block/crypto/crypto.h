/* SPDX-License-Identifier: MIT */
/*
 * Crypto primitives for disk encryption (internal, not installed).
 *
 * Everything here wraps OpenSSL 3 (ciphers, hashes, PBKDF2, random) and
 * libargon2; no cipher is implemented by hand.  Used by the LUKS driver
 * (formats/luks) and, through it, by qcow2 encryption.
 *
 * Key buffers: anything holding a key, a passphrase or key material comes
 * from vdk_secure_alloc() (mlock()ed where the system allows) and goes back
 * through vdk_secure_free(), which wipes it with OPENSSL_cleanse.
 *
 * Threads: a struct vdk_cipher may be used by many threads at once; it
 * keeps a pool of OpenSSL contexts keyed once, so a request takes one
 * context from the pool and only changes the IV per sector.
 */
#ifndef VDK_BLOCK_CRYPTO_H
#define VDK_BLOCK_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "vdk/error.h"

/* ---- secure memory ---- */

/* Zeroed buffer of len bytes, locked in RAM when possible; NULL on ENOMEM. */
void *vdk_secure_alloc(size_t len);
/* Wipe (OPENSSL_cleanse) and free a buffer from vdk_secure_alloc(). */
void vdk_secure_free(void *p, size_t len);
/* Fill buf with cryptographically strong random bytes: 0 or -EIO. */
int vdk_random_bytes(void *buf, size_t len);

/* ---- hashes ---- */

enum vdk_hash {
    VDK_HASH_SHA1,
    VDK_HASH_SHA224,
    VDK_HASH_SHA256,
    VDK_HASH_SHA384,
    VDK_HASH_SHA512,
    VDK_HASH_RIPEMD160,
    VDK_HASH__MAX,
};
#define VDK_HASH_MAX_LEN 64

/* "sha256" -> VDK_HASH_SHA256 (case-insensitive), -EINVAL if unknown. */
int vdk_hash_parse(const char *name);
const char *vdk_hash_name(enum vdk_hash h);
/* Digest length in bytes. */
size_t vdk_hash_len(enum vdk_hash h);
/* OpenSSL digest for h, NULL if unavailable. */
const EVP_MD *vdk_hash_md(enum vdk_hash h);
/* One-shot digest of data into out (vdk_hash_len bytes): 0 or -EIO. */
int vdk_hash_digest(enum vdk_hash h, const void *data, size_t len, uint8_t *out);

/* ---- ciphers ---- */

enum vdk_cipher_mode { VDK_CIPHER_XTS, VDK_CIPHER_CBC, VDK_CIPHER_ECB };
enum vdk_ivgen { VDK_IVGEN_PLAIN64, VDK_IVGEN_PLAIN, VDK_IVGEN_ESSIV, VDK_IVGEN_NONE };

/*
 * A cipher specification: AES with a key of key_len bytes (for XTS that is
 * both halves: 32 = aes-128-xts, 64 = aes-256-xts), a mode and an IV
 * generator (ivgen_hash only for ESSIV).
 */
struct vdk_cipher_spec {
    enum vdk_cipher_mode mode;
    enum vdk_ivgen ivgen;
    enum vdk_hash ivgen_hash;
    /* plain/plain64 with a hash suffix ("xts-plain:sha256", which qemu-img
       writes for ivgen-hash-alg without essiv): unused, kept for the name. */
    bool plain_hash;
    uint32_t key_len;
};

/*
 * Parse LUKS1-style names: cipher "aes", mode "xts-plain64",
 * "cbc-essiv:sha256", "cbc-plain64", "cbc-plain", "ecb", with key_len bytes.
 * Rejects anything OpenSSL cannot do or LUKS does not define.
 */
int vdk_cipher_spec_parse(struct vdk_cipher_spec *s, const char *cipher,
                          const char *mode, uint32_t key_len,
                          struct vdk_error **errp);
/* LUKS2-style single name "aes-xts-plain64". */
int vdk_cipher_spec_parse2(struct vdk_cipher_spec *s, const char *name,
                           uint32_t key_len, struct vdk_error **errp);
/* "xts-plain64", "cbc-essiv:sha256", ... into buf (>= 32 bytes). */
void vdk_cipher_spec_mode_name(const struct vdk_cipher_spec *s, char *buf,
                               size_t size);
/* Bits of the AES key proper (128/192/256): half of key_len for XTS. */
unsigned vdk_cipher_spec_aes_bits(const struct vdk_cipher_spec *s);

struct vdk_cipher;

/*
 * Key a cipher (key: spec->key_len bytes, copied into secure memory).
 * Fails with a clear message on keys OpenSSL rejects (an XTS key whose two
 * halves are equal).
 */
int vdk_cipher_new(struct vdk_cipher **out, const struct vdk_cipher_spec *spec,
                   const uint8_t *key, struct vdk_error **errp);
void vdk_cipher_free(struct vdk_cipher *c);

/*
 * Encrypt/decrypt len bytes (a multiple of sector_size, which is a multiple
 * of 16) from in to out (in == out allowed).  Sector k of the buffer uses
 * IV number iv_sector + k * (sector_size / 512): IVs always count 512-byte
 * units, as dm-crypt does with iv_large_sectors off (LUKS2 4096-byte
 * sectors) and as qcow2 does (host offset / 512).  Each sector is a
 * separate cipher call.  Hot path: 0 or -errno.
 */
int vdk_cipher_encrypt(struct vdk_cipher *c, uint64_t iv_sector,
                       uint32_t sector_size, const void *in, void *out,
                       size_t len);
int vdk_cipher_decrypt(struct vdk_cipher *c, uint64_t iv_sector,
                       uint32_t sector_size, const void *in, void *out,
                       size_t len);

/* ---- key derivation ---- */

/* Minimum PBKDF2 iterations we accept when deriving from a time target. */
#define VDK_PBKDF2_MIN_ITERS 1000u
/* Bounds on argon2 costs read from images or options. */
#define VDK_ARGON2_MIN_MEMORY 32u          /* KiB, cryptsetup's minimum */
#define VDK_ARGON2_MAX_MEMORY (4u << 20)   /* KiB = 4 GiB */
#define VDK_ARGON2_MAX_TIME   (1u << 20)
#define VDK_ARGON2_MAX_PARALLEL 16u
#define VDK_PBKDF2_MAX_ITERS  (1u << 31)

enum vdk_kdf_type { VDK_KDF_PBKDF2, VDK_KDF_ARGON2I, VDK_KDF_ARGON2ID };

struct vdk_kdf {
    enum vdk_kdf_type type;
    enum vdk_hash hash;      /* pbkdf2 */
    uint32_t iterations;     /* pbkdf2 iterations or argon2 time cost */
    uint32_t memory_kib;     /* argon2 */
    uint32_t parallel;       /* argon2 */
};

/* "pbkdf2", "argon2i", "argon2id" -> type, -EINVAL otherwise. */
int vdk_kdf_type_parse(const char *name);
const char *vdk_kdf_type_name(enum vdk_kdf_type t);

/* Derive outlen bytes from pass and salt: 0, -EINVAL (bad parameters), -ENOMEM. */
int vdk_kdf_derive(const struct vdk_kdf *k, const void *pass, size_t passlen,
                   const uint8_t *salt, size_t saltlen, uint8_t *out,
                   size_t outlen);
int vdk_pbkdf2(enum vdk_hash h, const void *pass, size_t passlen,
               const uint8_t *salt, size_t saltlen, uint32_t iters,
               uint8_t *out, size_t outlen);

/*
 * Time target -> cost, by measuring this machine (as cryptsetup and QEMU
 * do).  PBKDF2: iterations for iter_ms milliseconds deriving outlen bytes,
 * at least VDK_PBKDF2_MIN_ITERS.  Argon2: time cost for iter_ms at the given
 * memory and parallelism, at least 4 (cryptsetup's minimum).  Results are
 * cached per process.
 */
int vdk_kdf_benchmark(struct vdk_kdf *k, uint32_t iter_ms, size_t outlen,
                      struct vdk_error **errp);
/* PBKDF2 iterations per second for hash h (measured, cached). */
uint64_t vdk_pbkdf2_iters_per_sec(enum vdk_hash h, size_t outlen);

/* ---- anti-forensic splitter (LUKS "AF") ---- */

/*
 * Split key (len bytes) into stripes*len bytes of out, using hash h for the
 * diffusion as LUKS defines: stripes-1 random blocks, each folded into a
 * running value that is XORed and diffused, the last block chosen so the
 * merge yields key.  0 or -errno.
 */
int vdk_af_split(enum vdk_hash h, const uint8_t *key, size_t len,
                 uint32_t stripes, uint8_t *out);
/* Inverse: stripes*len bytes of in -> key (len bytes). */
int vdk_af_merge(enum vdk_hash h, const uint8_t *in, size_t len,
                 uint32_t stripes, uint8_t *key);

#endif /* VDK_BLOCK_CRYPTO_H */
