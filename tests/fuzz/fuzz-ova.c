/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for OVA archives: the input is the .ova in a memory
 * node.  The tar index (ustar, pax, GNU long names), the OVF disk list,
 * the manifest check and the opening of each disk (through the offset
 * window and the vmdk driver) all run on it; the OVF and manifest parsers
 * also run on the raw input directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "formats/vmdk/ova.h"
#include "fuzz-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Structure-aware mutator for the tar archive: walks the 512-byte member
 * headers and changes one member: its size (octal and base-256, at and
 * past the end, not octal), its type (file, directory, link, pax 'x' and
 * 'g', GNU 'L' long name, others), its name and prefix, the ustar magic;
 * the records of a pax header (length prefix, path and size keys); a
 * manifest digest; the data of the OVF's numbers; or swaps two members
 * so the OVF is not first.  The header checksum is resealed (not always:
 * a bad one must be refused too).
 */
#define OVA_BLK 512u
#define OVA_WALK 64u

static uint64_t ova_octal(const uint8_t *f, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n && f[i] >= '0' && f[i] <= '7'; i++)
        v = v * 8 + (f[i] - '0');
    return v;
}

static void ova_seal(struct fmut *m, uint64_t h)
{
    unsigned sum = 0;
    memset(m->data + h + 148, ' ', 8);
    for (unsigned i = 0; i < OVA_BLK; i++)
        sum += m->data[h + i];
    char tmp[9];
    snprintf(tmp, sizeof(tmp), "%06o", sum & 0777777);
    memcpy(m->data + h + 148, tmp, 6);
    m->data[h + 154] = 0;
    m->data[h + 155] = ' ';
}

static bool ova_step(struct fmut *m)
{
    uint64_t hdr[OVA_WALK], at = 0;
    unsigned n = 0;
    while (n < OVA_WALK && fm_in(m, at, OVA_BLK) && m->data[at] &&
           memcmp(m->data + at + 257, "ustar", 5) == 0) {
        hdr[n++] = at;
        at += OVA_BLK + ((ova_octal(m->data + at + 124, 12) + OVA_BLK - 1) & ~(uint64_t)(OVA_BLK - 1));
    }
    if (!n)
        return false;
    unsigned k = fm_rand(m, n);
    uint64_t h = hdr[k], len = ova_octal(m->data + h + 124, 12), data = h + OVA_BLK;
    char tmp[16];
    switch (fm_rand(m, 10)) {
    case 0: case 1: { /* the size */
        static const uint64_t v[] = { 0, 1, 511, 512, 513, 077777777777ull };
        uint64_t sz = fm_rand(m, 2) ? v[fm_rand(m, 6)] : m->size - data + fm_rand(m, 3) - 1;
        switch (fm_rand(m, 4)) {
        case 0: /* base-256, as GNU tar writes large sizes */
            memset(m->data + h + 124, 0, 12);
            m->data[h + 124] = 0x80;
            for (int i = 0; i < 8; i++)
                m->data[h + 135 - i] = (uint8_t)(sz >> (8 * i));
            if (!fm_rand(m, 4))
                m->data[h + 128] = 0xff;
            break;
        case 1: m->data[h + 124 + fm_rand(m, 12)] = "89 x\0"[fm_rand(m, 5)]; break;
        default:
            snprintf(tmp, sizeof(tmp), "%011llo", (unsigned long long)(sz & 077777777777ull));
            memcpy(m->data + h + 124, tmp, 11);
            m->data[h + 135] = fm_rand(m, 4) ? 0 : '7';
            break;
        }
        break;
    }
    case 2: m->data[h + 156] = (uint8_t)"0\0" "125xgLKSV7"[fm_rand(m, 12)]; break;
    case 3: { /* the name (and the prefix it continues) */
        static const char *const names[] = { "d1.vmdk", "a.ovf", "a.mf", "a.cert", "../d1.vmdk",
                                             "/abs.vmdk", "", "d1.vmdk/", "A.OVF" };
        unsigned f = fm_rand(m, 3) ? 0 : 345, w = f ? 155 : 100;
        const char *v = names[fm_rand(m, 9)];
        memset(m->data + h + f, fm_rand(m, 6) ? 0 : 'n', w);
        memcpy(m->data + h + f, v, strlen(v));
        break;
    }
    case 4: /* the magic: ustar, old GNU, neither */
        memcpy(m->data + h + 257, fm_rand(m, 2) ? "ustar  \0" : "ustar\00000", 8);
        if (!fm_rand(m, 3))
            m->data[h + 262] = 'X';
        break;
    case 5: { /* a pax record: its length, a path or size key */
        static const char *const recs[] = { "30 size=18446744073709551615\n",
                                            "20 path=../x.vmdk\n", "9999 path=x\n",
                                            "0 size=1\n", "12 size=-1\n", "11 path=\n\n",
                                            "13 linkpath=\n" };
        const char *r = recs[fm_rand(m, 7)];
        size_t rl = strlen(r);
        /* somewhere in the member's data, which may claim more than the
           input holds */
        uint64_t off = len > rl && fm_rand(m, 2) ? fm_rand64(m) % (len - rl) : 0;
        if (!fm_in(m, data + off, (unsigned)rl))
            off = 0;
        if (!fm_in(m, data + off, (unsigned)rl))
            return false;
        if (m->data[h + 156] != 'x' && m->data[h + 156] != 'g')
            m->data[h + 156] = 'x';
        memcpy(m->data + data + off, r, rl);
        break;
    }
    case 6: { /* a digit in the data (manifest digests, OVF sizes) */
        uint64_t end = data + (len < 65536 ? len : 65536);
        if (end > m->size || end == data)
            return false;
        uint64_t p = data + fm_rand64(m) % (end - data);
        for (uint64_t q = p; q < end; q++)
            if (m->data[q] >= '0' && m->data[q] <= '9') {
                m->data[q] = (uint8_t)('0' + (m->data[q] - '0' + 1 + fm_rand(m, 9)) % 10);
                return true;
            }
        return false;
    }
    case 7: { /* two neighbouring members swapped (the OVF no longer first) */
        if (k + 1 >= n)
            return false;
        uint64_t a = hdr[k], b = hdr[k + 1], c = k + 2 < n ? hdr[k + 2] : at;
        if (c > m->size || b - a > (8u << 20))
            return false;
        uint8_t *first = malloc(b - a);
        if (!first)
            return false;
        memcpy(first, m->data + a, b - a);
        memmove(m->data + a, m->data + b, c - b);
        memcpy(m->data + a + (c - b), first, b - a);
        free(first);
        return true;
    }
    case 8: /* the checksum alone */
        fm_field_mutate(m, h + 148, 2, false);
        return true;
    default: /* mode, uid, mtime: not octal */
        m->data[h + 100 + fm_rand(m, 44)] = (uint8_t)fm_rand(m, 256);
        break;
    }
    if (fm_rand(m, 8))
        ova_seal(m, h);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, ova_step, NULL);
}

static void quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdk_set_warning_handler(quiet, NULL);
    if (size > (8u << 20))
        return 0;
    struct ovf_info ovf;
    if (ovf_parse((const char *)data, size, &ovf, NULL) == 0)
        ovf_info_free(&ovf);
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    struct tar_index idx;
    if (tar_index_read(mem, size, &idx, NULL) == 0)
        (void)ova_manifest_verify(mem, &idx, (const char *)data, size < 4096 ? size : 4096,
                                  NULL);
    tar_index_free(&idx);
    const struct vdk_driver *drv = vdk_driver_find("ova");
    for (int disk = 1; drv && disk <= 2; disk++) {
        struct vdk_node *n = vdk_node_new_internal(drv, "fuzz.ova");
        struct vdk_opts *o = vdk_opts_new();
        if (!n || !o) {
            if (n)
                vdk_node_free_internal(n);
            vdk_opts_free(o);
            break;
        }
        vdk_node_ref(mem);
        n->file = mem;
        vdk_opts_set(o, "disk", disk == 1 ? "1" : "2");
        if (disk == 2)
            vdk_opts_set(o, "verify", "on");
        if (drv->open(n, o, 0, NULL) == 0) {
            uint8_t buf[4096];
            if (n->size >= sizeof(buf))
                vdk_pread(n, buf, sizeof(buf), 0, 0);
            uint64_t pnum;
            if (n->size)
                vdk_block_status(n, 0, n->size, &pnum, NULL, NULL);
            struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
            if (vdk_get_info(n, &info, NULL) == 0)
                vdk_image_info_clear(&info);
            drv->close(n);
        }
        vdk_opts_free(o);
        vdk_node_free_internal(n);
    }
    vdk_node_unref(mem);
    return 0;
}
