/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot's image reader on an arbitrary disk: partition tables (GPT with
 * its backup, MBR with logical partitions), then the whole scan (every
 * filesystem, every entry kind), the list and loading the default entry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>

#include "guest-boot/image/image.h"
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Structure-aware mutator (little endian, 512-byte sectors): an MBR
 * entry's type (protective, extended, Linux, FAT, ESP, empty), start and
 * length (overlapping, past the end, chained extended ones); the GPT
 * header's own and backup locations, usable range, entry array place,
 * count and entry size, header size; a GPT entry's type GUID (ESP,
 * XBOOTLDR, Linux, unused), range (reversed, overlapping another, outside
 * the usable area), name.  Both CRC-32s are resealed three times in four.
 */
static void part_seal(struct fmut *m, uint64_t h)
{
    uint64_t hs = fm_get(m, h + 12, 4, false), at = fm_get(m, h + 72, 8, false) * 512;
    uint64_t len = fm_get(m, h + 80, 4, false) * fm_get(m, h + 84, 4, false);
    if (at && len <= (1u << 20) && fm_in(m, at, (unsigned)len))
        fm_put(m, h + 88, 4, false, crc32(0, m->data + at, (uInt)len));
    if (hs >= 92 && hs <= 512) {
        fm_put(m, h + 16, 4, false, 0);
        fm_put(m, h + 16, 4, false, crc32(0, m->data + h, (uInt)hs));
    }
}

static bool part_step(struct fmut *m)
{
    static const uint8_t types[] = { 0xee, 0x05, 0x0f, 0x85, 0x83, 0x0c, 0x0b, 0xef, 0x00 };
    static const uint8_t guids[][16] = {
        { 0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
          0xc9, 0x3b }, /* ESP */
        { 0xff, 0xc2, 0x13, 0xbc, 0xe6, 0x59, 0x62, 0x42, 0xa3, 0x52, 0xb2, 0x75, 0xfd, 0x6f,
          0x71, 0x72 }, /* XBOOTLDR */
        { 0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47,
          0x7d, 0xe4 }, /* Linux filesystem */
        { 0 },
    };
    if (m->size < 1024)
        return false;
    uint64_t nlba = m->size / 512;
    bool gpt = memcmp(m->data + 512, "EFI PART", 8) == 0;
    uint64_t h = 512;
    if (gpt && fm_rand(m, 4) == 0 && memcmp(m->data + (nlba - 1) * 512, "EFI PART", 8) == 0)
        h = (nlba - 1) * 512; /* the backup */
    unsigned c = fm_rand(m, 12);
    if (!gpt && c >= 3)
        c = fm_rand(m, 3);
    switch (c) {
    case 0: { /* an MBR entry's type */
        m->data[446 + 16 * fm_rand(m, 4) + 4] = types[fm_rand(m, sizeof(types))];
        return true;
    }
    case 1: case 2: { /* an MBR entry's start or length */
        uint64_t e = 446 + 16 * fm_rand(m, 4), hot[] = { 0, 512, m->size / 2, m->size };
        struct fm_table t = { .off = e + 8 + 4 * fm_rand(m, 2), .count = 1, .width = 4,
                              .unit = 512, .mask = 0xffffffff, .hot = hot, .nhot = 4 };
        fm_table_mutate(m, &t);
        return true;
    }
    case 3: case 4: { /* header locations and the usable range */
        static const unsigned f[] = { 24, 32, 40, 48, 72 };
        uint64_t v[] = { 0, 1, 2, nlba - 1, nlba, nlba + 1, fm_get(m, h + 48, 8, false) + 1,
                         fm_get(m, h + 40, 8, false) - 1, ~0ull };
        fm_put(m, h + f[fm_rand(m, 5)], 8, false, v[fm_rand(m, 9)]);
        break;
    }
    case 5: { /* entry count and size, header size */
        static const uint64_t v[] = { 0, 1, 4, 128, 129, 1024, 1025, 0xffffffff };
        static const uint64_t sz[] = { 0, 8, 127, 128, 129, 136, 256, 512, 8192, 0x80000000 };
        static const uint64_t hs[] = { 0, 91, 92, 93, 512, 513, 4096 };
        switch (fm_rand(m, 3)) {
        case 0: fm_put(m, h + 80, 4, false, v[fm_rand(m, 8)]); break;
        case 1: fm_put(m, h + 84, 4, false, sz[fm_rand(m, 10)]); break;
        default: fm_put(m, h + 12, 4, false, hs[fm_rand(m, 7)]); break;
        }
        break;
    }
    default: { /* an entry: type, range, name */
        uint64_t at = fm_get(m, h + 72, 8, false) * 512, es = fm_get(m, h + 84, 4, false);
        uint64_t n = fm_get(m, h + 80, 4, false);
        if (es < 128 || n == 0 || n > 1024 || !fm_in(m, at, 128))
            return false;
        uint64_t e = at + es * (fm_rand64(m) % (n < 8 ? n : 8));
        if (!fm_in(m, e, 128))
            return false;
        switch (fm_rand(m, 4)) {
        case 0: memcpy(m->data + e, guids[fm_rand(m, 4)], 16); break;
        case 1: case 2: {
            uint64_t hot[] = { 0, 1, fm_get(m, h + 40, 8, false) * 512,
                               fm_get(m, h + 48, 8, false) * 512, m->size };
            uint64_t o = at + es * fm_rand(m, 4);
            struct fm_table t = { .off = e + 32 + 8 * fm_rand(m, 2), .count = 1, .width = 8,
                                  .unit = 512, .mask = ~0ull, .hot = hot, .nhot = 5 };
            if (fm_rand(m, 3) || !fm_in(m, o, 48))
                fm_table_mutate(m, &t);
            else /* another entry's range: an overlap */
                memcpy(m->data + e + 32, m->data + o + 32, 16);
            break;
        }
        default: memset(m->data + e + 56, fm_rand(m, 2) ? 0xff : 'a', 72); break;
        }
        break;
    }
    }
    if (fm_rand(m, 4))
        part_seal(m, h);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, part_step, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct img_boot b;
    static FILE *null;
    struct img_mem m = { data, size };
    struct img_disk d;
    struct img_ptable t;
    struct vdk_error *err = NULL;

    if (!null && !(null = fopen("/dev/null", "w")))
        return 0;
    img_disk_from_mem(&d, &m);
    if (img_part_scan(&d, &t, &err) == 0) {
        /* What the scan accepted lies inside the disk, without overlaps. */
        for (int i = 0; i < t.n; i++)
            if (t.part[i].start > size || t.part[i].size > size - t.part[i].start)
                abort();
    } else if (!err) {
        abort(); /* a failure must explain itself */
    }
    vdk_error_free(err);
    err = NULL;
    if (img_boot_scan(&d, &b, &err) == 0) {
        struct img_loaded l;
        img_boot_list(&b, null);
        if (img_boot_load(&b, -1, 16u << 20, 16u << 20, &l, NULL) == 0)
            img_loaded_free(&l);
        img_boot_free(&b);
    } else if (!err) {
        abort();
    }
    vdk_error_free(err);
    return 0;
}
