/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the qcow2 crash-replay programs (qcow2-crash.c,
 * qcow2-repair-crash.c): a seeded xorshift generator and whole-file
 * read/write for the images they cut and replay.
 */
#ifndef VDK_TEST_QCOW2_CRASH_UTIL_H
#define VDK_TEST_QCOW2_CRASH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t rng_state;
static inline uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* The whole file in a malloc'ed buffer (*len bytes), or NULL. */
static inline uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseeko(f, 0, SEEK_END);
    *len = (size_t)ftello(f);
    fseeko(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b && fread(b, 1, *len, f) != *len) {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

/* Replace the file with len bytes of b; 0 or -1. */
static inline int write_file(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int r = fwrite(b, 1, len, f) == len ? 0 : -1;
    return fclose(f) == 0 ? r : -1;
}

#endif
