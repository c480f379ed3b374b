/* SPDX-License-Identifier: MIT */
/*
 * LUKS1 and LUKS2 headers (internal).
 *
 * Two users: the "luks" format driver (luks-driver.c), where the header
 * sits at offset 0 of the file and the payload follows it, and qcow2
 * encryption (encrypt.format=luks), where the header lives in clusters of
 * the qcow2 file announced by QEMU's 0x0537be77 header extension and the
 * payload is the qcow2 data clusters.  For the second use:
 *
 *   struct vdk_luks_params p;
 *   char *secret_id = NULL;
 *   vdk_luks_params_from_opts(&p, &secret_id, encrypt_opts, errp);
 *                                    (reads key-secret, cipher-alg, ...)
 *   len = vdk_luks_header_size(&p);  allocate len bytes at off in the file
 *   vdk_luks_format(&l, file, off, &p, pass, passlen, errp);
 *   ...
 *   vdk_luks_open(&l, file, off, len, pass, passlen, 0, errp);
 *   vdk_luks_encrypt(l, host_offset / 512, in, out, bytes);   (writes)
 *   vdk_luks_decrypt(l, host_offset / 512, in, out, bytes);   (reads)
 *   vdk_luks_info(l, &json);        (the "encrypt" object of qemu-img info)
 *   vdk_luks_amend(l, opts, errp);  (keyslots: state=, new-secret=, ...)
 *   vdk_luks_close(l);
 *
 * The passphrase comes from vdk_luks_get_secret(id).  Every value read from
 * the header is bounded before use; header errors give one-line messages.
 */
#ifndef VDK_FORMATS_LUKS_H
#define VDK_FORMATS_LUKS_H

#include <stdbool.h>
#include <stdint.h>

#include "block/crypto/crypto.h"
#include "block/driver.h"

struct json_object;

#define LUKS_MAGIC_LEN     6
#define LUKS1_NUM_SLOTS    8
#define LUKS2_NUM_SLOTS    32
#define LUKS_STRIPES       4000
#define LUKS_SALT_LEN      32
#define LUKS1_DIGEST_LEN   20
#define LUKS1_HDR_SIZE     592
#define LUKS2_BIN_SIZE     4096
#define LUKS2_HDR_SIZE_DEF 16384u
#define LUKS2_HDR_SIZE_MAX (4u << 20)   /* largest LUKS2 metadata area */
#define LUKS_KEY_MAX       64           /* aes-256-xts */
#define LUKS_MAX_STRIPES   (1u << 20)   /* bound on untrusted stripes */
/* LUKS2 default payload offset (cryptsetup's): 16 MiB. */
#define LUKS2_PAYLOAD_DEF  (16u << 20)

struct luks_keyslot {
    bool active;
    struct vdk_kdf kdf;          /* pbkdf2 (hash), argon2i, argon2id */
    uint8_t salt[64];
    uint32_t salt_len;
    uint64_t area_offset;        /* bytes from the header start */
    uint64_t area_size;          /* bytes reserved for the split key */
    uint32_t stripes;
    enum vdk_hash af_hash;
    struct vdk_cipher_spec area_cipher; /* LUKS1: the payload cipher */
    int priority;                /* LUKS2, -1 absent */
};

struct luks_digest {             /* the volume key check (PBKDF2) */
    enum vdk_hash hash;
    uint32_t iterations;
    uint8_t salt[64];
    uint32_t salt_len;
    uint8_t digest[VDK_HASH_MAX_LEN];
    uint32_t digest_len;
};

/*
 * Bounds on the key derivation costs an (untrusted) header may ask for,
 * checked before any derivation starts.  The defaults are far above what
 * cryptsetup, qemu-img or vdk write (their costs aim at 1-2 s), and the
 * open options max-pbkdf-iterations, max-pbkdf-memory and max-pbkdf-work
 * (qcow2: encrypt.max-pbkdf-...) raise them.
 */
struct vdk_luks_limits {
    uint64_t iterations;         /* PBKDF2 iterations (keyslots and digest) */
    uint64_t memory_kib;         /* argon2 memory */
    uint64_t work;               /* argon2 time cost x memory, in GiB passes */
    const char *prefix;          /* of the option names in messages */
};
#define VDK_LUKS_MAX_ITERATIONS_DEF 100000000u   /* ~40 s of SHA-256 on one core */
#define VDK_LUKS_MAX_MEMORY_DEF     (4u << 20)   /* KiB: LUKS2's largest, 4 GiB */
#define VDK_LUKS_MAX_WORK_DEF       256u         /* e.g. 256 passes over 1 GiB */

struct vdk_luks {
    int version;                 /* 1 or 2 */
    struct vdk_node *file;       /* where the header lives (not owned) */
    uint64_t base;               /* header offset in file */
    uint64_t limit;              /* bytes available from base (0: file end) */
    struct vdk_cipher_spec spec; /* payload cipher */
    enum vdk_hash hash;          /* LUKS1 hash spec; LUKS2 digest hash */
    uint64_t payload_offset;     /* bytes from base */
    uint32_t sector_size;        /* payload sector: 512 (LUKS1) or LUKS2's */
    uint64_t iv_tweak;           /* LUKS2 segment iv_tweak */
    char uuid[41];
    struct luks_digest digest;
    struct luks_keyslot slots[LUKS2_NUM_SLOTS];
    int nslots;                  /* 8 for LUKS1, 32 for LUKS2 */
    /* LUKS2 only */
    uint64_t hdr_size;           /* binary header + JSON area */
    uint64_t seqid;
    uint64_t keyslots_size;
    char label[49];
    char subsystem[49];
    char csum_alg[33];
    struct json_object *tokens;  /* kept as read */
    struct json_object *config;  /* kept as read (flags), sizes rewritten */
    bool foreign_slots;          /* keyslots of another volume key: the
                                    header cannot be rewritten safely */
    struct vdk_luks_limits lim;  /* defaults unless vdk_luks_set_limits() */
    /* unlocked state */
    uint8_t *key;                /* secure, spec.key_len, NULL if locked */
    struct vdk_cipher *cipher;
};

/* Options of vdk_luks_params_from_opts(), for the drivers' tables. */
extern const struct vdk_opt_desc vdk_luks_create_opt_table[];

struct vdk_luks_params {
    int version;                 /* 1 or 2 */
    struct vdk_cipher_spec spec;
    enum vdk_hash hash;          /* hash-alg: PBKDF2 and AF hash */
    uint32_t iter_time_ms;
    struct vdk_kdf kdf;          /* LUKS2: type, memory, parallel */
    uint32_t forced_iters;       /* 0: from iter_time */
    uint32_t sector_size;
};

/*
 * Read create options (format-version, cipher-alg, cipher-mode, ivgen-alg,
 * ivgen-hash-alg, hash-alg, iter-time, pbkdf, pbkdf-memory, pbkdf-parallel,
 * pbkdf-force-iterations, sector-size, key-secret) from opts.  *secret_id
 * receives a copy of key-secret (NULL if absent); caller frees.
 */
int vdk_luks_params_from_opts(struct vdk_luks_params *p, char **secret_id,
                              struct vdk_opts *opts, struct vdk_error **errp);
/* Bytes the header and key material take: the payload offset. */
uint64_t vdk_luks_header_size(const struct vdk_luks_params *p);

/* Fetch the passphrase of secret `id` (secure copy, vdk_secret_free). */
int vdk_luks_get_secret(const char *id, char **pass, size_t *len,
                        struct vdk_error **errp);

/* Write a new header with one keyslot (0) for pass, and open it. */
int vdk_luks_format(struct vdk_luks **out, struct vdk_node *file, uint64_t base,
                    const struct vdk_luks_params *p, const char *pass,
                    size_t passlen, struct vdk_error **errp);

enum { VDK_LUKS_NO_KEY = 1 }; /* parse only (info without a passphrase) */

/*
 * Read the header at base (limit: bytes available there, 0 = to the end
 * of the file) and unlock it with pass through any active keyslot.
 * Wrong passphrase: -EPERM "invalid passphrase".
 */
int vdk_luks_open(struct vdk_luks **out, struct vdk_node *file, uint64_t base,
                  uint64_t limit, const char *pass, size_t passlen, unsigned flags,
                  struct vdk_error **errp);
void vdk_luks_close(struct vdk_luks *l);

/* Limits from the open options max-pbkdf-iterations, max-pbkdf-memory and
   max-pbkdf-work under prefix ("" or "encrypt."); unset ones default. */
int vdk_luks_limits_from_opts(struct vdk_luks_limits *lim, struct vdk_opts *opts,
                              const char *prefix, struct vdk_error **errp);
/* Their descriptions, for the drivers' option tables. */
#define VDK_LUKS_LIMIT_OPTS(prefix)                                                    \
    { prefix "max-pbkdf-iterations", VDK_OPT_NUMBER,                                  \
      "Refuse headers asking for more PBKDF2 iterations", "100000000", NULL },         \
    { prefix "max-pbkdf-memory", VDK_OPT_NUMBER,                                      \
      "Refuse headers asking for more argon2 memory (KiB)", "4194304", NULL },         \
    { prefix "max-pbkdf-work", VDK_OPT_NUMBER,                                        \
      "Refuse headers asking for more argon2 time x memory (GiB passes)", "256", NULL }
void vdk_luks_set_limits(struct vdk_luks *l, const struct vdk_luks_limits *lim);
/*
 * Unlock a header opened with VDK_LUKS_NO_KEY: refuses a keyslot or
 * digest whose costs are above the limits before deriving anything
 * (-E2BIG, naming the field and the option), then tries every active
 * keyslot (-EPERM "invalid passphrase").
 */
int vdk_luks_unlock(struct vdk_luks *l, const char *pass, size_t passlen,
                    struct vdk_error **errp);

/* Payload sectors: len a multiple of vdk_luks_sector_size(); iv_sector in
   512-byte units.  Hot path: 0 or -errno. */
int vdk_luks_encrypt(struct vdk_luks *l, uint64_t iv_sector, const void *in,
                     void *out, size_t len);
int vdk_luks_decrypt(struct vdk_luks *l, uint64_t iv_sector, const void *in,
                     void *out, size_t len);
static inline uint32_t vdk_luks_sector_size(const struct vdk_luks *l) { return l->sector_size; }
static inline uint64_t vdk_luks_payload_offset(const struct vdk_luks *l) { return l->payload_offset; }

/* qemu's QCryptoBlockInfoLUKS as JSON (cipher-alg, ..., slots). */
int vdk_luks_info(struct vdk_luks *l, struct json_object **out);

/*
 * Keyslot management in qemu-img amend's style: state=active with
 * new-secret (and optional keyslot, iter-time) adds a passphrase;
 * state=inactive with old-secret or keyslot removes one.  Refuses to
 * remove the last active keyslot.  The header must be unlocked.
 */
int vdk_luks_amend(struct vdk_luks *l, struct vdk_opts *opts, struct vdk_error **errp);
/* Its options (for help and validation); unknown undotted keys are refused
   before anything changes. */
extern const struct vdk_opt_desc vdk_luks_amend_opt_table[];

/* ---- internal to formats/luks ---- */

/* Header I/O relative to l->base, bounded by l->limit. */
int luks_read(struct vdk_luks *l, uint64_t off, void *buf, size_t len,
              struct vdk_error **errp);
int luks_write(struct vdk_luks *l, uint64_t off, const void *buf, size_t len,
               struct vdk_error **errp);
/* Bytes available from base. */
uint64_t luks_avail(struct vdk_luks *l);

int luks1_parse(struct vdk_luks *l, const uint8_t *hdr, struct vdk_error **errp);
int luks1_write_header(struct vdk_luks *l, struct vdk_error **errp);
int luks2_load(struct vdk_luks *l, struct vdk_error **errp);
int luks2_write_header(struct vdk_luks *l, struct vdk_error **errp);

/* Keyslot helpers (luks-keyslot.c). */
int luks_keyslot_unlock(struct vdk_luks *l, int slot, const char *pass,
                        size_t passlen, uint8_t *key, struct vdk_error **errp);
/* Fill keyslot `slot` for pass with a kdf like `kdf` (costs from
   iter_time_ms unless forced != 0); LUKS2 areas are placed in free space.
   Writes the key material, not the header. */
int luks_keyslot_store(struct vdk_luks *l, int slot, const char *pass,
                       size_t passlen, const struct vdk_kdf *kdf,
                       uint32_t iter_time_ms, uint32_t forced,
                       struct vdk_error **errp);
int luks_digest_make(struct vdk_luks *l, uint32_t iter_time_ms, struct vdk_error **errp);
bool luks_digest_check(struct vdk_luks *l, const uint8_t *key);
/* Unlock with pass: tries every active keyslot. */
int luks_unlock(struct vdk_luks *l, const char *pass, size_t passlen,
                struct vdk_error **errp);

/* base64 via OpenSSL; decode bounded to max bytes: length or -EINVAL. */
int luks_b64_decode(const char *in, uint8_t *out, size_t max);
char *luks_b64_encode(const uint8_t *in, size_t len);

#endif /* VDK_FORMATS_LUKS_H */
