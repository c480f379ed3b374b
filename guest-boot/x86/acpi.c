/* SPDX-License-Identifier: MIT */
/*
 * ACPI table builder (layouts from the ACPI 6.x specification, chapter 5).
 */
#include <errno.h>
#include <string.h>

#include "guest-boot/mem.h"
#include "guest-boot/x86/acpi.h"

#define HDR_LEN 36
#define FADT_LEN 276
#define FACS_LEN 64
#define AML_MAX 4096

uint8_t acpi_sum(const uint8_t *p, size_t len)
{
    uint8_t s = 0;
    while (len--)
        s = (uint8_t)(s + *p++);
    return s;
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
    memcpy(t, sig, 4);
    put_le32(t + 4, len);
    t[8] = rev;
    memcpy(t + 10, "VDK   ", 6);
    memcpy(t + 16, "VDKBOOT ", 8);
    put_le32(t + 24, 1);
    memcpy(t + 28, "VDK ", 4);
    put_le32(t + 32, 1);
}

static void checksum(uint8_t *t, uint32_t len)
{
    t[9] = 0;
    t[9] = (uint8_t)(0 - acpi_sum(t, len));
}

/* Generic address structure for a system I/O port. */
static void gas_io(uint8_t *g, uint8_t bits, uint8_t access, uint64_t port)
{
    g[0] = 1; /* system I/O */
    g[1] = bits;
    g[2] = 0;
    g[3] = access;
    put_le64(g + 4, port);
}

/* ---- AML ---- */

struct aml {
    uint8_t b[AML_MAX];
    size_t n;
    int overflow;
};

static void aml_bytes(struct aml *a, const void *p, size_t len)
{
    if (len > sizeof(a->b) - a->n) {
        a->overflow = 1;
        return;
    }
    memcpy(a->b + a->n, p, len);
    a->n += len;
}

static void aml_byte(struct aml *a, uint8_t v)
{
    aml_bytes(a, &v, 1);
}

/* PkgLength (ACPI 20.2.4) for a body of `body` bytes, counting itself. */
static void aml_pkglen(struct aml *a, size_t body)
{
    if (body + 1 < 0x40) {
        aml_byte(a, (uint8_t)(body + 1));
    } else if (body + 2 < 0x1000) {
        size_t t = body + 2;
        aml_byte(a, (uint8_t)(0x40 | (t & 0xf)));
        aml_byte(a, (uint8_t)(t >> 4));
    } else {
        size_t t = body + 3;
        aml_byte(a, (uint8_t)(0x80 | (t & 0xf)));
        aml_byte(a, (uint8_t)(t >> 4));
        aml_byte(a, (uint8_t)(t >> 12));
    }
}

/* Device (VRnn) { _HID "LNRO0005", _UID n, _CRS { Memory32Fixed, IRQ } } */
static void aml_virtio_device(struct aml *a, int idx, uint64_t base,
                              uint32_t size, uint8_t irq)
{
    struct aml d = { .n = 0 };
    char name[5] = { 'V', 'R', (char)('0' + idx / 10), (char)('0' + idx % 10), 0 };
    uint8_t crs[23], *c = crs;

    aml_bytes(&d, name, 4);
    aml_byte(&d, 0x08); /* NameOp */
    aml_bytes(&d, "_HID", 4);
    aml_byte(&d, 0x0d); /* StringPrefix */
    aml_bytes(&d, "LNRO0005", 9);
    aml_byte(&d, 0x08);
    aml_bytes(&d, "_UID", 4);
    aml_byte(&d, 0x0a); /* BytePrefix */
    aml_byte(&d, (uint8_t)idx);

    /* Memory32Fixed (ReadWrite, base, size) */
    *c++ = 0x86;
    *c++ = 0x09;
    *c++ = 0x00;
    *c++ = 0x01;
    put_le32(c, (uint32_t)base);
    put_le32(c + 4, size);
    c += 8;
    /* Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { irq } */
    *c++ = 0x89;
    *c++ = 0x06;
    *c++ = 0x00;
    *c++ = 0x03;
    *c++ = 0x01;
    put_le32(c, irq);
    c += 4;
    *c++ = 0x79; /* end tag, checksum 0 */
    *c++ = 0x00;

    aml_byte(&d, 0x08);
    aml_bytes(&d, "_CRS", 4);
    aml_byte(&d, 0x11); /* BufferOp */
    aml_pkglen(&d, 2 + sizeof(crs));
    aml_byte(&d, 0x0a);
    aml_byte(&d, (uint8_t)sizeof(crs));
    aml_bytes(&d, crs, sizeof(crs));

    aml_byte(a, 0x5b); /* ExtOpPrefix */
    aml_byte(a, 0x82); /* DeviceOp */
    aml_pkglen(a, d.n);
    aml_bytes(a, d.b, d.n);
    a->overflow |= d.overflow;
}

static void aml_dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
    /* Name (\_S5, Package (4) { 5, 5, 0, 0 }) */
    static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08,
                                  0x04, 0x0a, ACPI_S5_SLP_TYP, 0x0a,
                                  ACPI_S5_SLP_TYP, 0x00, 0x00 };
    aml_bytes(a, s5, sizeof(s5));
    if (cfg->ndev == 0)
        return;

    struct aml sb = { .n = 0 };
    aml_bytes(&sb, "\\_SB_", 5);
    for (int i = 0; i < cfg->ndev; i++)
        aml_virtio_device(&sb, i, cfg->dev_base[i], cfg->dev_size,
                          cfg->dev_irq[i]);
    aml_byte(a, 0x10); /* ScopeOp */
    aml_pkglen(a, sb.n);
    aml_bytes(a, sb.b, sb.n);
    a->overflow |= sb.overflow;
}

/* ---- tables ---- */

static void build_fadt(uint8_t *t, uint64_t facs, uint64_t dsdt)
{
    header(t, "FACP", FADT_LEN, 6);
    put_le32(t + 36, (uint32_t)facs);
    put_le32(t + 40, (uint32_t)dsdt);
    put_le16(t + 46, IRQ_SCI);
    put_le32(t + 56, PORT_PM1A_EVT);
    put_le32(t + 64, PORT_PM1A_CNT);
    t[88] = 4; /* PM1_EVT_LEN */
    t[89] = 2; /* PM1_CNT_LEN */
    put_le16(t + 96, 101);  /* C2 latency > 100: no C2 */
    put_le16(t + 98, 1001); /* C3 latency > 1000: no C3 */
    put_le16(t + 109, 0x24); /* IAPC_BOOT_ARCH: no VGA, no CMOS RTC */
    /* WBINVD, C1, power and sleep buttons absent, reset register */
    put_le32(t + 112, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5) |
                      (1u << 10));
    gas_io(t + 116, 8, 1, 0x64); /* RESET_REG: i8042 command port */
    t[128] = 0xfe;               /* RESET_VALUE: pulse reset */
    put_le64(t + 132, facs);
    put_le64(t + 140, dsdt);
    gas_io(t + 148, 32, 2, PORT_PM1A_EVT);
    gas_io(t + 172, 16, 2, PORT_PM1A_CNT);
    memcpy(t + 268, "VDKBOOT\0", 8);
    checksum(t, FADT_LEN);
}

static uint32_t build_madt(uint8_t *t, const struct acpi_config *cfg)
{
    uint8_t *p = t + 44;
    put_le32(t + 36, (uint32_t)LAYOUT_LAPIC);
    put_le32(t + 40, 1); /* PCAT_COMPAT: there are 8259s */
    for (int i = 0; i < cfg->ncpus; i++, p += 8) {
        p[0] = 0;
        p[1] = 8;
        p[2] = (uint8_t)i; /* processor UID */
        p[3] = (uint8_t)i; /* APIC ID */
        put_le32(p + 4, 1); /* enabled */
    }
    p[0] = 1;
    p[1] = 12;
    p[2] = (uint8_t)cfg->ncpus; /* I/O APIC ID after the CPUs' */
    p[3] = 0;
    put_le32(p + 4, (uint32_t)LAYOUT_IOAPIC);
    put_le32(p + 8, 0);
    p += 12;
    /* SCI: ISA IRQ 9 is level-triggered, active high. */
    p[0] = 2;
    p[1] = 10;
    p[2] = 0;
    p[3] = IRQ_SCI;
    put_le32(p + 4, IRQ_SCI);
    put_le16(p + 8, 0x000d);
    p += 10;
    uint32_t len = (uint32_t)(p - t);
    header(t, "APIC", len, 5);
    checksum(t, len);
    return len;
}

int acpi_build(uint8_t *buf, size_t buflen, uint64_t base,
               const struct acpi_config *cfg, uint64_t *rsdp)
{
    struct aml a;
    size_t madt_len = 44 + 8 * (size_t)cfg->ncpus + 12 + 10;

    if (cfg->ncpus < 1 || cfg->ncpus > MAX_CPUS || cfg->ndev < 0 ||
        cfg->ndev > MAX_DISKS)
        return -EINVAL;
    memset(&a, 0, sizeof(a));
    aml_dsdt_body(&a, cfg);
    if (a.overflow)
        return -EINVAL;

    /* Layout: RSDP, XSDT (3 entries), FACS (64-aligned), FADT, MADT, DSDT */
    size_t o_rsdp = 0, o_xsdt = 64, o_facs = 128, o_fadt = o_facs + FACS_LEN;
    size_t o_madt = (o_fadt + FADT_LEN + 15) & ~(size_t)15;
    size_t o_dsdt = (o_madt + madt_len + 15) & ~(size_t)15;
    size_t end = o_dsdt + HDR_LEN + a.n;
    if (end > buflen)
        return -ENOSPC;
    memset(buf, 0, end);

    uint8_t *r = buf + o_rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, "VDK   ", 6);
    r[15] = 2;
    put_le32(r + 20, 36);
    put_le64(r + 24, base + o_xsdt);
    r[8] = (uint8_t)(0 - acpi_sum(r, 20));
    r[32] = (uint8_t)(0 - acpi_sum(r, 36));

    uint8_t *x = buf + o_xsdt;
    header(x, "XSDT", HDR_LEN + 16, 1);
    put_le64(x + 36, base + o_fadt);
    put_le64(x + 44, base + o_madt);
    checksum(x, HDR_LEN + 16);

    uint8_t *f = buf + o_facs;
    memcpy(f, "FACS", 4);
    put_le32(f + 4, FACS_LEN);
    f[32] = 2; /* version */

    build_fadt(buf + o_fadt, base + o_facs, base + o_dsdt);
    build_madt(buf + o_madt, cfg);

    uint8_t *d = buf + o_dsdt;
    header(d, "DSDT", (uint32_t)(HDR_LEN + a.n), 2);
    memcpy(d + HDR_LEN, a.b, a.n);
    checksum(d, (uint32_t)(HDR_LEN + a.n));

    *rsdp = base + o_rsdp;
    return (int)end;
}
