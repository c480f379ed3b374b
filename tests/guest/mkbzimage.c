/* SPDX-License-Identifier: MIT */
/*
 * Package the test guest ELF as a bzImage (boot.rst): a boot sector and
 * setup header (protocol 2.15, one setup sector, 64-bit entry flagged in
 * xloadflags, loaded at 1 MiB, not relocatable) followed by the flat
 * protected-mode image of the ELF's PT_LOAD segments.  The guest puts its
 * 64-bit entry at offset 0x200 of that image, as the protocol requires.
 *
 *   mkbzimage GUEST.elf OUT.bzImage
 */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static int die(const char *m)
{
    fprintf(stderr, "mkbzimage: %s\n", m);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return die("usage: mkbzimage GUEST.elf OUT.bzImage");
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return die("cannot open the ELF");
    static uint8_t elf[4 << 20];
    size_t len = fread(elf, 1, sizeof(elf), f);
    fclose(f);
    Elf64_Ehdr eh;
    if (len < sizeof(eh))
        return die("short ELF");
    memcpy(&eh, elf, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phoff > len || eh.e_phnum * (size_t)sizeof(Elf64_Phdr) > len - eh.e_phoff)
        return die("not a usable ELF64");

    uint64_t lo = UINT64_MAX, file_hi = 0, mem_hi = 0;
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD)
            continue;
        if (ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
            return die("segment past the end of the ELF");
        if (ph.p_paddr < lo)
            lo = ph.p_paddr;
        if (ph.p_paddr + ph.p_filesz > file_hi)
            file_hi = ph.p_paddr + ph.p_filesz;
        if (ph.p_paddr + ph.p_memsz > mem_hi)
            mem_hi = ph.p_paddr + ph.p_memsz;
    }
    if (lo != 0x100000 || file_hi <= lo || file_hi - lo > (2u << 20))
        return die("guest must load at 1 MiB and be under 2 MiB");

    size_t payload = (size_t)((file_hi - lo + 15) & ~15ull);
    size_t setup = 2 * 512;
    uint8_t *out = calloc(1, setup + payload);
    if (!out)
        return die("out of memory");
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, elf + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD)
            memcpy(out + setup + (ph.p_paddr - lo), elf + ph.p_offset, ph.p_filesz);
    }

    uint8_t *h = out;
    const char *msg = "vdk test guest: boot this with a bzImage loader.\r\n";
    memcpy(h + 0x20, msg, strlen(msg));
    h[0x1f1] = 1;                              /* setup_sects */
    put32(h + 0x1f4, (uint32_t)(payload / 16)); /* syssize */
    put16(h + 0x1fe, 0xaa55);                  /* boot_flag */
    h[0x200] = 0xeb;                           /* jmp to end of header */
    h[0x201] = 0x66;                           /* header ends at 0x268 */
    memcpy(h + 0x202, "HdrS", 4);
    put16(h + 0x206, 0x020f);                  /* protocol 2.15 */
    h[0x211] = 0x01;                           /* LOADED_HIGH */
    put32(h + 0x214, 0x100000);                /* code32_start */
    put32(h + 0x22c, 0x37ffffff);              /* initrd_addr_max */
    put32(h + 0x230, 0x200000);                /* kernel_alignment */
    h[0x234] = 0;                              /* not relocatable */
    put16(h + 0x236, 0x0001);                  /* XLF_KERNEL_64 */
    put32(h + 0x238, 2047);                    /* cmdline_size */
    put64(h + 0x258, 0x100000);                /* pref_address */
    put32(h + 0x260, (uint32_t)((mem_hi - lo + 4095) & ~4095ull)); /* init_size */

    f = fopen(argv[2], "wb");
    if (!f || fwrite(out, 1, setup + payload, f) != setup + payload || fclose(f))
        return die("cannot write the bzImage");
    free(out);
    return 0;
}
