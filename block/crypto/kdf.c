/* SPDX-License-Identifier: MIT */
/*
 * Key derivation: PBKDF2 (OpenSSL) and argon2i/argon2id (libargon2), and
 * the benchmark that turns a time target (iter-time) into costs.
 */
#include <argon2.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "block/crypto/crypto.h"

static const char *const kdf_names[] = { "pbkdf2", "argon2i", "argon2id" };

int vdk_kdf_type_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (strcasecmp(name, kdf_names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *vdk_kdf_type_name(enum vdk_kdf_type t)
{
    return (unsigned)t < 3 ? kdf_names[t] : "?";
}

int vdk_pbkdf2(enum vdk_hash h, const void *pass, size_t passlen, const uint8_t *salt,
               size_t saltlen, uint32_t iters, uint8_t *out, size_t outlen)
{
    const EVP_MD *md = vdk_hash_md(h);
    if (!md || iters == 0 || iters > VDK_PBKDF2_MAX_ITERS || passlen > INT32_MAX ||
        saltlen > INT32_MAX || outlen > INT32_MAX)
        return -EINVAL;
    if (PKCS5_PBKDF2_HMAC(passlen ? pass : "", (int)passlen, salt, (int)saltlen,
                          (int)iters, md, (int)outlen, out) != 1)
        return -EIO;
    return 0;
}

static int argon2(enum vdk_kdf_type t, uint32_t tcost, uint32_t mem, uint32_t par,
                  const void *pass, size_t passlen, const uint8_t *salt, size_t saltlen,
                  uint8_t *out, size_t outlen)
{
    if (tcost < 1 || tcost > VDK_ARGON2_MAX_TIME || mem < VDK_ARGON2_MIN_MEMORY ||
        mem > VDK_ARGON2_MAX_MEMORY || par < 1 || par > VDK_ARGON2_MAX_PARALLEL ||
        mem < 8 * par || saltlen < ARGON2_MIN_SALT_LENGTH || outlen < ARGON2_MIN_OUTLEN)
        return -EINVAL;
    int r = argon2_hash(tcost, mem, par, passlen ? pass : "", passlen, salt, saltlen,
                        out, outlen, NULL, 0, t == VDK_KDF_ARGON2I ? Argon2_i : Argon2_id,
                        ARGON2_VERSION_13);
    if (r == ARGON2_MEMORY_ALLOCATION_ERROR)
        return -ENOMEM;
    return r == ARGON2_OK ? 0 : -EINVAL;
}

int vdk_kdf_derive(const struct vdk_kdf *k, const void *pass, size_t passlen,
                   const uint8_t *salt, size_t saltlen, uint8_t *out, size_t outlen)
{
    if (k->type == VDK_KDF_PBKDF2)
        return vdk_pbkdf2(k->hash, pass, passlen, salt, saltlen, k->iterations, out, outlen);
    return argon2(k->type, k->iterations, k->memory_kib, k->parallel, pass, passlen,
                  salt, saltlen, out, outlen);
}

/* CPU time, not wall time: on a loaded machine wall time would make the
   benchmark (and so the iteration counts) swing wildly.  cryptsetup also
   measures CPU time. */
static uint64_t now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Measured PBKDF2 rate per hash, in iterations of one output block per
 * second; 0 = not measured yet. */
static uint64_t pbkdf2_rate[VDK_HASH__MAX];
static pthread_mutex_t bench_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t pbkdf2_block_rate(enum vdk_hash h)
{
    pthread_mutex_lock(&bench_lock);
    uint64_t rate = pbkdf2_rate[h];
    if (!rate) {
        static const char pass[] = "vdk benchmark passphrase";
        uint8_t salt[32] = { 0 }, out[VDK_HASH_MAX_LEN];
        size_t hl = vdk_hash_len(h);
        /* Double the count until one run takes >= 50 ms, long enough for
           the clock and short enough for iter-time=10 tests. */
        for (uint32_t n = 1024; n && n < (1u << 30); n *= 2) {
            uint64_t t0 = now_us(CLOCK_THREAD_CPUTIME_ID);
            if (vdk_pbkdf2(h, pass, sizeof(pass) - 1, salt, sizeof(salt), n, out, hl) < 0)
                break;
            uint64_t dt = now_us(CLOCK_THREAD_CPUTIME_ID) - t0;
            if (dt >= 50000) {
                rate = (uint64_t)n * 1000000u / dt;
                break;
            }
        }
        pbkdf2_rate[h] = rate ? rate : 1;
        rate = pbkdf2_rate[h];
    }
    pthread_mutex_unlock(&bench_lock);
    return rate;
}

uint64_t vdk_pbkdf2_iters_per_sec(enum vdk_hash h, size_t outlen)
{
    size_t hl = vdk_hash_len(h);
    if (!hl)
        return 0;
    size_t blocks = (outlen + hl - 1) / hl;
    return pbkdf2_block_rate(h) / (blocks ? blocks : 1);
}

int vdk_kdf_benchmark(struct vdk_kdf *k, uint32_t iter_ms, size_t outlen,
                      struct vdk_error **errp)
{
    if (k->type == VDK_KDF_PBKDF2) {
        uint64_t rate = vdk_pbkdf2_iters_per_sec(k->hash, outlen);
        if (!rate)
            return vdk_error_setf(errp, EINVAL, "unsupported hash for PBKDF2");
        uint64_t it = rate * iter_ms / 1000u;
        if (it < VDK_PBKDF2_MIN_ITERS)
            it = VDK_PBKDF2_MIN_ITERS;
        if (it > VDK_PBKDF2_MAX_ITERS)
            it = VDK_PBKDF2_MAX_ITERS;
        k->iterations = (uint32_t)it;
        return 0;
    }
    /* Argon2: time one pass over at most 64 MiB, take the cost as linear
       in memory x passes, and pick the time cost for the target at the
       requested memory; if even 4 passes (cryptsetup's minimum) are too
       slow, lower the memory instead, as cryptsetup does. */
    uint8_t salt[32] = { 0 }, out[64];
    static const char pass[] = "vdk benchmark passphrase";
    uint32_t probe = k->memory_kib < 65536 ? k->memory_kib : 65536;
    /* argon2 runs `parallel` threads: count process CPU time per lane. */
    uint64_t t0 = now_us(CLOCK_PROCESS_CPUTIME_ID);
    int r = argon2(k->type, 1, probe, k->parallel, pass, sizeof(pass) - 1, salt,
                   sizeof(salt), out, outlen < sizeof(out) ? outlen : sizeof(out));
    if (r < 0)
        return vdk_error_setf(errp, -r, "argon2 with memory %u KiB and parallel %u failed",
                              probe, k->parallel);
    double per_kib = (double)((now_us(CLOCK_PROCESS_CPUTIME_ID) - t0) / k->parallel + 1) /
                     probe;
    double target = (double)iter_ms * 1000.0;
    double pass_us = per_kib * k->memory_kib;
    if (4 * pass_us > target) {
        double m = target / (4 * per_kib);
        if (m < VDK_ARGON2_MIN_MEMORY)
            m = VDK_ARGON2_MIN_MEMORY;
        if (m < 8.0 * k->parallel)
            m = 8.0 * k->parallel;
        if (m < k->memory_kib)
            k->memory_kib = (uint32_t)m;
        k->iterations = 4;
    } else {
        double t = target / pass_us;
        k->iterations = t > VDK_ARGON2_MAX_TIME ? VDK_ARGON2_MAX_TIME : (uint32_t)t;
    }
    return 0;
}
