/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: LUKS2 binary headers, JSON metadata (both copies) and
 * keyslot unlocking.  Mutated JSON would almost never get past the header
 * checksum, so for most inputs the target first re-seals both copies with
 * a correct checksum; inputs with an odd byte 264 (header padding) keep
 * theirs, so the checksum checks are fuzzed as well.
 * The input is the image; it is parsed without a key, its info is built,
 * and when the costs it asks for are small (so a run stays fast) it is
 * unlocked with the seeds' passphrase "x".
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz-luks-common.h"
#include "fuzz-luks2-mutator.h"

/* Recompute the sha256 checksum of the header copy at off, if sane. */
static void reseal(uint8_t *buf, size_t size, uint64_t off)
{
    if (off > size || size - off < LUKS2_BIN_SIZE)
        return;
    uint8_t *h = buf + off;
    uint64_t hs = 0;
    for (int i = 8; i < 16; i++)
        hs = hs << 8 | h[i];
    if (hs < LUKS2_BIN_SIZE || hs > size - off || hs > LUKS2_HDR_SIZE_MAX)
        return;
    memset(h + 448, 0, 64);
    (void)vdk_hash_digest(VDK_HASH_SHA256, h, hs, h + 448);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = size ? malloc(size) : NULL;
    if (size && !copy)
        return 0;
    if (copy) {
        memcpy(copy, data, size);
        if (size >= LUKS2_BIN_SIZE && !(copy[264] & 1)) {
            uint64_t hs = 0;
            for (int i = 8; i < 16; i++)
                hs = hs << 8 | copy[i];
            reseal(copy, size, 0);
            reseal(copy, size, hs);
        }
    }
    struct vdk_node *file = fuzz_memory(copy, size);
    free(copy);
    if (file)
        fuzz_luks_exercise(file);
    return 0;
}
