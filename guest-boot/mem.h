/* SPDX-License-Identifier: MIT */
/*
 * Guest physical memory as the host sees it.
 *
 * RAM is one host mapping.  The first low_size bytes sit at guest physical
 * 0; the rest (when --mem is above the 32-bit MMIO hole) sits at 4 GiB.
 * Every address the guest hands us goes through guest_ptr(), which checks
 * that the whole range lies inside one RAM block, so a hostile guest can
 * never make the host touch memory outside the mapping.
 */
#ifndef VDK_BOOT_MEM_H
#define VDK_BOOT_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GUEST_HIGH_BASE 0x100000000ull /* RAM above the hole starts here */

struct guest_mem {
    uint8_t *host;      /* low_size + high_size bytes */
    uint64_t low_size;  /* RAM at [0, low_size) */
    uint64_t high_size; /* RAM at [4 GiB, 4 GiB + high_size) */
};

/* Host pointer for [gpa, gpa+len) or NULL if any byte is not RAM. */
static inline void *guest_ptr(const struct guest_mem *m, uint64_t gpa,
                              uint64_t len)
{
    if (gpa < m->low_size) {
        if (len > m->low_size - gpa)
            return NULL;
        return m->host + gpa;
    }
    if (gpa >= GUEST_HIGH_BASE && gpa - GUEST_HIGH_BASE < m->high_size) {
        uint64_t off = gpa - GUEST_HIGH_BASE;
        if (len > m->high_size - off)
            return NULL;
        return m->host + m->low_size + off;
    }
    return NULL;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

#endif /* VDK_BOOT_MEM_H */
