/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the crypto primitives (known-answer vectors from the
 * standards) and of the LUKS header API as qcow2 will use it (a header at
 * an offset inside another file, caller-chosen IV sectors).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "block/crypto/crypto.h"
#include "block/driver.h"
#include "protocols/memory.h"
#include "formats/luks/luks.h"
#include "vdk/secret.h"

static void unhex(const char *h, uint8_t *out)
{
    for (size_t i = 0; h[2 * i]; i++)
        sscanf(h + 2 * i, "%2hhx", &out[i]);
}

/* RFC 6070 PBKDF2-HMAC-SHA1 vectors. */
static void test_pbkdf2_rfc6070(void **state)
{
    uint8_t out[25], want[25];
    assert_int_equal(vdk_pbkdf2(VDK_HASH_SHA1, "password", 8, (const uint8_t *)"salt", 4, 1,
                                out, 20), 0);
    unhex("0c60c80f961f0e71f3a9b524af6012062fe037a6", want);
    assert_memory_equal(out, want, 20);
    assert_int_equal(vdk_pbkdf2(VDK_HASH_SHA1, "password", 8, (const uint8_t *)"salt", 4,
                                4096, out, 20), 0);
    unhex("4b007901b765489abead49d926f721d065a429c1", want);
    assert_memory_equal(out, want, 20);
    assert_int_equal(vdk_pbkdf2(VDK_HASH_SHA1, "passwordPASSWORDpassword", 24,
                                (const uint8_t *)"saltSALTsaltSALTsaltSALTsaltSALTsalt", 36,
                                4096, out, 25), 0);
    unhex("3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038", want);
    assert_memory_equal(out, want, 25);
    assert_int_equal(vdk_pbkdf2(VDK_HASH_SHA1, "p", 1, (const uint8_t *)"s", 1, 0, out, 20),
                     -EINVAL);
}

/* Reference vectors of libargon2's own test suite (v1.3, t=2, 64 MiB). */
static void test_argon2(void **state)
{
    uint8_t out[32], want[32];
    struct vdk_kdf k = { .type = VDK_KDF_ARGON2ID, .iterations = 2, .memory_kib = 65536,
                         .parallel = 1 };
    assert_int_equal(vdk_kdf_derive(&k, "password", 8, (const uint8_t *)"somesalt", 8, out,
                                    32), 0);
    unhex("09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7", want);
    assert_memory_equal(out, want, 32);
    k.type = VDK_KDF_ARGON2I;
    assert_int_equal(vdk_kdf_derive(&k, "password", 8, (const uint8_t *)"somesalt", 8, out,
                                    32), 0);
    unhex("c1628832147d9720c5bd1cfd61367078729f6dfb6f8fea9ff98158e0d7816ed0", want);
    assert_memory_equal(out, want, 32);
    k.memory_kib = 1; /* below the minimum: refused, not crashed */
    assert_int_equal(vdk_kdf_derive(&k, "p", 1, (const uint8_t *)"somesalt", 8, out, 32),
                     -EINVAL);
}

/* IEEE 1619-2007 XTS-AES-128 vector 2 (data unit 0x3333333333, 32 bytes). */
static void test_xts_ieee1619(void **state)
{
    uint8_t key[32], pt[32], ct[32], want[32];
    struct vdk_cipher_spec spec;
    struct vdk_cipher *c = NULL;
    memset(key, 0x11, 16);
    memset(key + 16, 0x22, 16);
    memset(pt, 0x44, 32);
    assert_int_equal(vdk_cipher_spec_parse(&spec, "aes", "xts-plain64", 32, NULL), 0);
    assert_int_equal(vdk_cipher_new(&c, &spec, key, NULL), 0);
    assert_int_equal(vdk_cipher_encrypt(c, 0x3333333333ull, 32, pt, ct, 32), 0);
    unhex("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0", want);
    assert_memory_equal(ct, want, 32);
    assert_int_equal(vdk_cipher_decrypt(c, 0x3333333333ull, 32, ct, ct, 32), 0);
    assert_memory_equal(ct, pt, 32);
    vdk_cipher_free(c);
    /* equal halves: refused with a message, as OpenSSL would */
    struct vdk_error *e = NULL;
    memset(key, 0, sizeof(key));
    assert_int_equal(vdk_cipher_new(&c, &spec, key, &e), -EINVAL);
    assert_non_null(strstr(e->msg, "halves"));
    vdk_error_free(e);
}

/* IVs count 512-byte units: one 4096-byte sector at IV 8 equals nothing
   else but itself; a 4096-byte sector is one XTS data unit, not eight. */
static void test_iv_units(void **state)
{
    uint8_t key[64], buf[8192], a[8192], b[8192];
    struct vdk_cipher_spec spec;
    struct vdk_cipher *c = NULL;
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (int i = 0; i < 8192; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(vdk_cipher_spec_parse2(&spec, "aes-xts-plain64", 64, NULL), 0);
    assert_int_equal(vdk_cipher_new(&c, &spec, key, NULL), 0);
    /* two 4K sectors from IV 8 == the second done alone at IV 16 */
    assert_int_equal(vdk_cipher_encrypt(c, 8, 4096, buf, a, 8192), 0);
    assert_int_equal(vdk_cipher_encrypt(c, 16, 4096, buf + 4096, b, 4096), 0);
    assert_memory_equal(a + 4096, b, 4096);
    /* ... and differs from eight 512-byte units */
    assert_int_equal(vdk_cipher_encrypt(c, 8, 512, buf, b, 4096), 0);
    assert_memory_not_equal(a, b, 4096);
    assert_int_equal(vdk_cipher_encrypt(c, 8, 4096, buf, a, 100), -EINVAL);
    vdk_cipher_free(c);
}

static void test_cbc_modes(void **state)
{
    static const char *const modes[] = { "cbc-plain", "cbc-plain64", "cbc-essiv:sha256",
                                         "xts-essiv:sha256", "ecb" };
    uint8_t key[32], buf[2048], ct[2048];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i + 100);
    for (int i = 0; i < 2048; i++)
        buf[i] = (uint8_t)(i * 3);
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        struct vdk_cipher_spec spec;
        struct vdk_cipher *c = NULL;
        assert_int_equal(vdk_cipher_spec_parse(&spec, "aes", modes[m], 32, NULL), 0);
        char name[48];
        vdk_cipher_spec_mode_name(&spec, name, sizeof(name));
        assert_string_equal(name, modes[m]);
        assert_int_equal(vdk_cipher_new(&c, &spec, key, NULL), 0);
        assert_int_equal(vdk_cipher_encrypt(c, 1ull << 33, 512, buf, ct, 2048), 0);
        assert_memory_not_equal(ct, buf, 512);
        assert_int_equal(vdk_cipher_decrypt(c, 1ull << 33, 512, ct, ct, 2048), 0);
        assert_memory_equal(ct, buf, 2048);
        vdk_cipher_free(c);
    }
    struct vdk_cipher_spec spec;
    assert_true(vdk_cipher_spec_parse(&spec, "aes", "cbc-essiv:sha1", 32, NULL) < 0);
    assert_true(vdk_cipher_spec_parse(&spec, "aes", "xts-plain64", 48, NULL) < 0);
    assert_true(vdk_cipher_spec_parse(&spec, "twofish", "xts-plain64", 64, NULL) < 0);
    assert_true(vdk_cipher_spec_parse(&spec, "aes", "cbc-benbi", 32, NULL) < 0);
}

static void test_af(void **state)
{
    static const enum vdk_hash hs[] = { VDK_HASH_SHA1, VDK_HASH_SHA256, VDK_HASH_SHA512 };
    uint8_t key[64], back[64];
    for (int i = 0; i < 64; i++)
        key[i] = (uint8_t)(0xa5 ^ i);
    uint8_t *mat = malloc(64 * 4000);
    assert_non_null(mat);
    for (size_t h = 0; h < 3; h++) {
        for (uint32_t stripes = 1; stripes <= 4000; stripes += 3999) {
            assert_int_equal(vdk_af_split(hs[h], key, 64, stripes, mat), 0);
            assert_int_equal(vdk_af_merge(hs[h], mat, 64, stripes, back), 0);
            assert_memory_equal(key, back, 64);
        }
        /* one flipped bit anywhere destroys the key */
        mat[1234] ^= 1;
        assert_int_equal(vdk_af_merge(hs[h], mat, 64, 4000, back), 0);
        assert_memory_not_equal(key, back, 64);
    }
    /* stripes=1 is the key itself */
    assert_int_equal(vdk_af_split(VDK_HASH_SHA256, key, 64, 1, mat), 0);
    assert_memory_equal(mat, key, 64);
    assert_int_equal(vdk_af_merge(VDK_HASH_SHA256, mat, 64, 0, back), -EINVAL);
    free(mat);
}

static struct vdk_node *mem_node(uint64_t size)
{
    struct vdk_node *n = NULL;
    struct vdk_opts *o = vdk_opts_new();
    char s[32];
    snprintf(s, sizeof(s), "%llu", (unsigned long long)size);
    vdk_opts_set(o, "size", s);
    assert_int_equal(vdk_open_protocol(&n, "memory://luks", o, VDK_O_RDWR, NULL), 0);
    return n;
}

/* The qcow2 use: a header inside another file at an offset, bounded by
   its length, and payload encrypted with the IV the caller chooses. */
static void test_header_at_offset(void **state)
{
    for (int v = 1; v <= 2; v++) {
        struct vdk_luks_params p;
        char *id = NULL;
        struct vdk_opts *o = vdk_opts_new();
        vdk_opts_parse(o, v == 1 ? "key-secret=k,iter-time=5"
                       : "key-secret=k,iter-time=5,format-version=2,pbkdf-memory=64", NULL,
                       NULL);
        assert_int_equal(vdk_luks_params_from_opts(&p, &id, o, NULL), 0);
        assert_string_equal(id, "k");
        assert_int_equal(vdk_opts_check_unused(o, "test", NULL), 0);
        free(id);
        vdk_opts_free(o);
        uint64_t hlen = vdk_luks_header_size(&p), base = 65536;
        assert_int_equal(hlen, v == 1 ? 2068480 : 16u << 20);
        struct vdk_node *file = mem_node(base + hlen + 65536);
        struct vdk_luks *l = NULL;
        assert_int_equal(vdk_luks_format(&l, file, base, &p, "pw", 2, NULL), 0);
        uint8_t pt[4096], ct[4096], back[4096];
        for (int i = 0; i < 4096; i++)
            pt[i] = (uint8_t)(i ^ v);
        /* IV = host offset / 512 */
        uint64_t host = base + hlen + 8192;
        assert_int_equal(vdk_luks_encrypt(l, host / 512, pt, ct, sizeof(ct)), 0);
        vdk_luks_close(l);
        l = NULL;
        struct vdk_error *e = NULL;
        assert_int_equal(vdk_luks_open(&l, file, base, hlen, "pX", 2, 0, &e), -EPERM);
        assert_string_equal(e->msg, "invalid passphrase");
        vdk_error_free(e);
        assert_int_equal(vdk_luks_open(&l, file, base, hlen, "pw", 2, 0, NULL), 0);
        assert_int_equal(vdk_luks_decrypt(l, host / 512, ct, back, sizeof(ct)), 0);
        assert_memory_equal(back, pt, sizeof(pt));
        struct json_object *j = NULL;
        assert_int_equal(vdk_luks_info(l, &j), 0);
        json_object_put(j);
        vdk_luks_close(l);
        /* a limit shorter than the header is an error, not a crash */
        e = NULL;
        assert_true(vdk_luks_open(&l, file, base, 4096, "pw", 2, 0, &e) < 0);
        vdk_error_free(e);
        /* nothing of the header leaked before base */
        uint64_t len;
        uint8_t *d = vdk_memory_data(file, &len);
        assert_true(vdk_buffer_is_zero(d, base));
        vdk_node_unref(file);
    }
}

/* The driver through the public API: create, unaligned I/O, amend. */
static void test_driver(void **state)
{
    char path[] = "/tmp/vdk-luks-unit-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    vdk_objects_clear();
    assert_int_equal(vdk_object_add("secret,id=a,data=alpha", NULL), 0);
    assert_int_equal(vdk_object_add("secret,id=b,data=beta", NULL), 0);
    struct vdk_opts *o = vdk_opts_new();
    vdk_opts_parse(o, "size=1M,key-secret=a,iter-time=5,format-version=2,pbkdf=pbkdf2,"
                   "sector-size=4096", NULL, NULL);
    assert_int_equal(vdk_create("luks", path, o, NULL), 0);
    struct vdk_node *n = NULL;
    o = vdk_opts_new();
    vdk_opts_set(o, "key-secret", "a");
    assert_int_equal(vdk_open(&n, path, "luks", o, VDK_O_RDWR, NULL), 0);
    assert_int_equal(vdk_get_length(n), 1 << 20);
    assert_int_equal(vdk_node_alignment(n), 4096);
    char msg[100] = "unaligned write through read-modify-write";
    assert_int_equal(vdk_pwrite(n, msg, sizeof(msg), 5000, 0), 0);
    o = vdk_opts_new();
    vdk_opts_parse(o, "state=active,new-secret=b,iter-time=5", NULL, NULL);
    assert_int_equal(vdk_amend(n, o, NULL), 0);
    vdk_opts_free(o);
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    assert_int_equal(vdk_get_info(n, &info, NULL), 0);
    assert_true(info.encrypted);
    assert_non_null(info.format_specific);
    vdk_image_info_clear(&info);
    vdk_close(n);
    o = vdk_opts_new();
    vdk_opts_set(o, "key-secret", "b");
    assert_int_equal(vdk_open(&n, path, NULL, o, 0, NULL), 0); /* probed */
    assert_string_equal(vdk_node_driver_name(n), "luks");
    char back[100];
    assert_int_equal(vdk_pread(n, back, sizeof(back), 5000, 0), 0);
    assert_memory_equal(back, msg, sizeof(msg));
    vdk_close(n);
    vdk_objects_clear();
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbkdf2_rfc6070),
        cmocka_unit_test(test_argon2),
        cmocka_unit_test(test_xts_ieee1619),
        cmocka_unit_test(test_iv_units),
        cmocka_unit_test(test_cbc_modes),
        cmocka_unit_test(test_af),
        cmocka_unit_test(test_header_at_offset),
        cmocka_unit_test(test_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
