/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for streamOptimized markers: the input is a stream
 * file; the footer reader looks for the footer and end-of-stream markers,
 * and every sector is tried as a grain marker (lba, size, zlib data) for
 * grain lba/128 with markers on and off, as a GT entry would point there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "formats/vmdk/vmdk.h"
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Structure-aware mutator for the stream: finds markers at sector starts
 * (a grain marker: lba, compressed size, zlib data; a metadata marker:
 * sector count, size 0, type) and the sparse headers (the first sector
 * and the footer's) and changes one: a grain's lba (off the grain grid,
 * past the capacity, another grain's), its size (0, one off, past the
 * end, above the bound for a grain), its zlib header and stream (a bit,
 * the tail cut); a metadata marker's type and sector count; the header
 * fields that place the grain directory and size the grains.
 */
static bool vs_step(struct fmut *m)
{
    uint64_t nsec = m->size / VMDK_SECTOR, grain[8], meta[8];
    unsigned ng = 0, nm = 0;
    if (nsec < 2)
        return false;
    for (unsigned k = 0; k < 64 && (ng < 8 || nm < 8); k++) {
        uint64_t at = (1 + fm_rand64(m) % (nsec - 1)) * VMDK_SECTOR;
        uint64_t sz = fm_get(m, at + 8, 4, false), type = fm_get(m, at + 12, 4, false);
        if (sz == 0 && type <= 3 && nm < 8)
            meta[nm++] = at;
        else if (sz && sz < (1u << 20) && m->data[at + 12] == 0x78 && ng < 8)
            grain[ng++] = at;
    }
    unsigned c = fm_rand(m, 10);
    if (c < 6 && !ng)
        c = 6 + fm_rand(m, 4);
    if ((c == 6 || c == 7) && !nm)
        c = 8;
    uint64_t g = ng ? grain[fm_rand(m, ng)] : 0, sz = fm_get(m, g + 8, 4, false);
    switch (c) {
    case 0: { /* a grain's lba */
        uint64_t cap = fm_get(m, 12, 8, false), other = fm_get(m, grain[fm_rand(m, ng)], 8, false);
        uint64_t v[] = { 0, 1, 127, 128, cap, cap - 128, cap + 128, other, ~0ull };
        fm_put(m, g, 8, false, fm_rand(m, 3) ? v[fm_rand(m, 9)] : fm_get(m, g, 8, false) ^
               1ull << fm_rand(m, 64));
        break;
    }
    case 1: case 2: { /* a grain's compressed size */
        uint64_t v[] = { 0, 1, 2, sz - 1, sz + 1, m->size - g, m->size - g - 11, 65536 + 8192 + 4097,
                         0xffffffff };
        fm_put(m, g + 8, 4, false, v[fm_rand(m, 9)]);
        break;
    }
    case 3: /* the zlib header: other methods, windows, a dictionary */
        m->data[g + 12 + fm_rand(m, 2)] ^= (uint8_t)(1u << fm_rand(m, 8));
        break;
    case 4: { /* the stream: a bit */
        uint64_t len = sz < m->size - g - 12 ? sz : m->size - g - 12;
        if (!len)
            return false;
        m->data[g + 12 + fm_rand64(m) % len] ^= (uint8_t)(1u << fm_rand(m, 8));
        break;
    }
    case 5: { /* the stream: its tail zeroed */
        uint64_t len = sz < m->size - g - 12 ? sz : m->size - g - 12;
        if (!len)
            return false;
        uint64_t p = fm_rand64(m) % len;
        memset(m->data + g + 12 + p, 0, len - p);
        break;
    }
    case 6: { /* a metadata marker's type */
        static const uint32_t v[] = { 0, 1, 2, 3, 4, 0xffffffff };
        fm_put(m, meta[fm_rand(m, nm)] + 12, 4, false, v[fm_rand(m, 6)]);
        break;
    }
    case 7: /* a metadata marker's sector count */
        fm_field_mutate(m, meta[fm_rand(m, nm)], 8, false);
        break;
    default: { /* header fields: capacity, grain size, GT entries, GD, overhead, algorithm */
        static const struct { unsigned off, width; } f[] = {
            { 12, 8 }, { 20, 8 }, { 44, 4 }, { 48, 8 }, { 56, 8 }, { 64, 8 }, { 77, 2 }, { 8, 4 },
        };
        uint64_t base = fm_rand(m, 2) || m->size < 1024 ? 0 : m->size - 1024; /* footer */
        unsigned k = fm_rand(m, sizeof(f) / sizeof(f[0]));
        if (memcmp(m->data + base, "KDMV", 4) != 0)
            return false;
        fm_field_mutate(m, base + f[k].off, f[k].width, false);
        break;
    }
    }
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, vs_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (4u << 20))
        return 0;
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    uint8_t hdr[VMDK_SECTOR];
    (void)vmdk_footer_read(mem, size, hdr, NULL);
    struct vmdk_extent e;
    memset(&e, 0, sizeof(e));
    e.file = mem;
    e.file_len = size;
    e.grain = 128 * VMDK_SECTOR;
    e.compressed = true;
    uint8_t *out = malloc(e.grain);
    for (uint64_t s = 0; out && s < size / VMDK_SECTOR && s < 256; s++) {
        uint64_t lba = size >= (s + 1) * VMDK_SECTOR ? vmdk_le64(data + s * VMDK_SECTOR) : 0;
        e.has_marker = true;
        (void)vmdk_cgrain_read(&e, lba / 128, s, out);
        e.has_marker = false;
        (void)vmdk_cgrain_read(&e, 0, s, out);
    }
    free(out);
    vdk_node_unref(mem);
    return 0;
}
