/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: LUKS1 header parsing and keyslot unlocking (see
 * fuzz-luks-common.h).
 */
#include "fuzz-luks-common.h"
#include "fuzz-mutator.h"

/*
 * Structure-aware mutator for the LUKS1 header (big endian; 8 keyslots of
 * 48 bytes at 208): cipher, mode and hash names from those that exist
 * and those that do not, unterminated; the payload offset, key size and
 * master key digest iterations at their edges; a keyslot enabled,
 * disabled or neither, its iterations, its key material placed on
 * another slot's, inside the header, past the payload or the end, its
 * stripes around 4000; a bit of a slot's key material.  LUKS1 has no
 * header checksum to reseal.
 */
static void luks1_name(struct fmut *m, unsigned off, const char *const *names, unsigned n)
{
    const char *v = names[fm_rand(m, n)];
    memset(m->data + off, 0, 32);
    memcpy(m->data + off, v, strlen(v) < 32 ? strlen(v) : 32);
    if (!fm_rand(m, 8))
        memset(m->data + off + strlen(v), 'z', 32 - (strlen(v) < 32 ? strlen(v) : 32));
}

static bool luks1_step(struct fmut *m)
{
    static const char *const ciphers[] = { "aes", "twofish", "serpent", "cast5", "des3_ede",
                                           "AES", "", "aes-xts-plain64", "cipher_null" };
    static const char *const modes[] = { "xts-plain64", "cbc-essiv:sha256", "cbc-plain",
                                         "cbc-plain64", "ecb", "xts-essiv:sha256", "cbc-essiv:",
                                         "cbc-essiv:nohash", "xts-benbi", "ctr-plain", "" };
    static const char *const hashes[] = { "sha1", "sha256", "sha512", "ripemd160", "md5",
                                          "whirlpool", "sha3-256", "", "sha" };
    static const uint64_t keybytes[] = { 0, 8, 16, 24, 32, 48, 64, 65, 128, 512, 0xffffffff };
    static const uint64_t iters[] = { 0, 1, 2, 1000, 5000, 5001, 0x7fffffff, 0xffffffff };
    static const uint64_t stripes[] = { 0, 1, 2, 3999, 4000, 4001, 0x10000, 0xffffffff };
    static const uint64_t actives[] = { 0x00ac71f3, 0x0000dead, 0, 0x00ac71f2 };
    if (m->size < 592 || memcmp(m->data, "LUKS\xba\xbe", 6) != 0)
        return false;
    unsigned slot = 208 + 48 * fm_rand(m, 8), other = 208 + 48 * fm_rand(m, 8);
    switch (fm_rand(m, 16)) {
    case 0: luks1_name(m, 8, ciphers, sizeof(ciphers) / sizeof(ciphers[0])); break;
    case 1: luks1_name(m, 40, modes, sizeof(modes) / sizeof(modes[0])); break;
    case 2: luks1_name(m, 72, hashes, sizeof(hashes) / sizeof(hashes[0])); break;
    case 3: fm_put(m, 6, 2, true, fm_rand(m, 3)); break; /* version */
    case 4: { /* payload offset: on the key material, at the end, past it */
        uint64_t km = fm_get(m, slot + 40, 4, true), end = m->size / 512;
        uint64_t v[] = { 0, 1, km, km + 1, end, end + 1, 0xffffffff };
        if (fm_rand(m, 2))
            fm_put(m, 104, 4, true, v[fm_rand(m, 7)]);
        else
            fm_field_mutate(m, 104, 4, true);
        break;
    }
    case 5: fm_put(m, 108, 4, true, keybytes[fm_rand(m, 11)]); break;
    case 6: fm_put(m, 164, 4, true, iters[fm_rand(m, 8)]); break;
    case 7: m->data[112 + fm_rand(m, 52)] ^= (uint8_t)(1u << fm_rand(m, 8)); break;
    case 8: fm_put(m, slot, 4, true, actives[fm_rand(m, 4)]); break;
    case 9: fm_put(m, slot + 4, 4, true, iters[fm_rand(m, 8)]); break;
    case 10: case 11: { /* key material: another slot's, the header, edges */
        uint64_t end = m->size / 512, pay = fm_get(m, 104, 4, true);
        uint64_t v[] = { fm_get(m, other + 40, 4, true), fm_get(m, other + 40, 4, true) + 1, 0,
                         1, pay, pay ? pay - 1 : 0, end, end + 1, 0xffffffff };
        if (fm_rand(m, 3))
            fm_put(m, slot + 40, 4, true, v[fm_rand(m, 9)]);
        else
            fm_field_mutate(m, slot + 40, 4, true);
        break;
    }
    case 12: fm_put(m, slot + 44, 4, true, stripes[fm_rand(m, 8)]); break;
    case 13: fm_field_mutate(m, slot + 44, 4, true); break;
    case 14: { /* a bit of the slot's key material */
        uint64_t at = fm_get(m, slot + 40, 4, true) * 512;
        if (!fm_in(m, at, 1))
            return false;
        uint64_t room = m->size - at < 4096 ? m->size - at : 4096;
        m->data[at + fm_rand64(m) % room] ^= (uint8_t)(1u << fm_rand(m, 8));
        break;
    }
    default: /* the uuid: unterminated, or odd bytes */
        m->data[168 + fm_rand(m, 40)] = fm_rand(m, 2) ? 'z' : (uint8_t)fm_rand(m, 256);
        break;
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, luks1_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (file)
        fuzz_luks_exercise(file);
    return 0;
}
