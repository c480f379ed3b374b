/* SPDX-License-Identifier: MIT */
/* ACPI tables: checksums, pointers, MADT entries, DSDT AML structure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "guest-boot/mem.h"
#include "guest-boot/x86/acpi.h"

#define BASE 0xe0000ull
static uint8_t buf[0x20000];

static const uint8_t *at(uint64_t gpa)
{
    assert_true(gpa >= BASE && gpa < BASE + sizeof(buf));
    return buf + (gpa - BASE);
}

static const uint8_t *table(const uint8_t *t, const char *sig)
{
    assert_memory_equal(t, sig, 4);
    uint32_t len = get_le32(t + 4);
    assert_true(len >= 36);
    assert_int_equal(acpi_sum(t, len), 0);
    return t;
}

/* Decode an AML PkgLength; returns its value and advances *p. */
static size_t pkglen(const uint8_t **p)
{
    const uint8_t *q = *p;
    unsigned extra = q[0] >> 6;
    size_t v = extra ? (q[0] & 0x0f) : (q[0] & 0x3f);
    for (unsigned i = 0; i < extra; i++)
        v |= (size_t)q[1 + i] << (4 + 8 * i);
    *p = q + 1 + extra;
    return v;
}

static void build(int ncpus, int ndev, uint64_t *rsdp)
{
    struct acpi_config c = { .ncpus = ncpus, .ndev = ndev, .dev_size = 0x200 };
    for (int i = 0; i < ndev; i++) {
        c.dev_base[i] = 0xd0000000ull + 0x1000ull * (unsigned)i;
        c.dev_irq[i] = (uint8_t)(5 + i);
    }
    memset(buf, 0xee, sizeof(buf));
    int n = acpi_build(buf, sizeof(buf), BASE, &c, rsdp);
    assert_true(n > 0 && (size_t)n <= sizeof(buf));
}

static void check_tables(int ncpus, int ndev)
{
    uint64_t rsdp;
    build(ncpus, ndev, &rsdp);
    const uint8_t *r = at(rsdp);
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(acpi_sum(r, 20), 0);
    assert_int_equal(acpi_sum(r, 36), 0);
    assert_int_equal(r[15], 2);
    assert_int_equal(get_le32(r + 20), 36);

    const uint8_t *x = table(at(get_le64(r + 24)), "XSDT");
    assert_int_equal(get_le32(x + 4), 36 + 16);
    const uint8_t *fadt = table(at(get_le64(x + 36)), "FACP");
    const uint8_t *madt = table(at(get_le64(x + 44)), "APIC");

    /* FADT: PM1 blocks, DSDT and FACS pointers (32 and 64 bit agree). */
    assert_int_equal(get_le32(fadt + 4), 276);
    assert_int_equal(get_le32(fadt + 64), PORT_PM1A_CNT);
    assert_int_equal(get_le32(fadt + 56), PORT_PM1A_EVT);
    assert_int_equal(fadt[89], 2);
    assert_int_equal(get_le16(fadt + 46), IRQ_SCI);
    assert_int_equal(get_le32(fadt + 40), get_le64(fadt + 140));
    assert_int_equal(get_le32(fadt + 36), get_le64(fadt + 132));
    assert_int_equal(fadt[172], 1); /* X_PM1a_CNT in I/O space */
    assert_int_equal(get_le64(fadt + 176), PORT_PM1A_CNT);
    assert_int_equal(get_le64(fadt + 120), 0x64); /* reset register */
    assert_int_equal(fadt[128], 0xfe);
    const uint8_t *facs = at(get_le64(fadt + 132));
    assert_memory_equal(facs, "FACS", 4);
    assert_int_equal((get_le64(fadt + 132)) % 64, 0);

    /* MADT: one enabled LAPIC per CPU, one I/O APIC, SCI override. */
    uint32_t mlen = get_le32(madt + 4);
    int lapics = 0, ioapics = 0, overrides = 0;
    for (uint32_t o = 44; o < mlen;) {
        const uint8_t *e = madt + o;
        assert_true(e[1] >= 2 && o + e[1] <= mlen);
        if (e[0] == 0) {
            assert_int_equal(e[3], lapics);
            assert_int_equal(get_le32(e + 4) & 1, 1);
            lapics++;
        } else if (e[0] == 1) {
            assert_int_equal(get_le32(e + 4), LAYOUT_IOAPIC);
            ioapics++;
        } else if (e[0] == 2) {
            assert_int_equal(e[3], IRQ_SCI);
            overrides++;
        }
        o += e[1];
    }
    assert_int_equal(lapics, ncpus);
    assert_int_equal(ioapics, 1);
    assert_int_equal(overrides, 1);

    /* DSDT: \_S5 = 5, then Scope (\_SB) whose PkgLength covers the rest,
       holding ndev devices with _HID LNRO0005 and their resources. */
    const uint8_t *d = table(at(get_le64(fadt + 140)), "DSDT");
    uint32_t dlen = get_le32(d + 4);
    const uint8_t *p = d + 36, *end = d + dlen;
    assert_int_equal(p[0], 0x08);
    assert_memory_equal(p + 1, "\\_S5_", 5);
    assert_int_equal(p[6], 0x12);
    assert_int_equal(p[10], 5);
    p += 15;
    if (ndev == 0) {
        assert_true(p == end);
        return;
    }
    assert_int_equal(*p++, 0x10);
    const uint8_t *scope = p;
    size_t slen = pkglen(&p);
    assert_true(scope + slen == end);
    assert_memory_equal(p, "\\_SB_", 5);
    p += 5;
    for (int i = 0; i < ndev; i++) {
        assert_int_equal(p[0], 0x5b);
        assert_int_equal(p[1], 0x82);
        p += 2;
        const uint8_t *dev = p;
        size_t dl = pkglen(&p);
        const uint8_t *dend = dev + dl;
        assert_true(dend <= end);
        assert_memory_equal(p + 10, "LNRO0005", 9);
        const uint8_t *crs = NULL;
        for (const uint8_t *q = p; q + 4 < dend; q++)
            if (memcmp(q, "_CRS", 4) == 0)
                crs = q + 4;
        assert_non_null(crs);
        assert_int_equal(crs[0], 0x11);
        const uint8_t *b = crs + 1;
        size_t bl = pkglen(&b);
        assert_true(crs + 1 + bl == dend);
        assert_int_equal(b[0], 0x0a);
        size_t n = b[1];
        const uint8_t *res = b + 2;
        assert_true(res + n == dend);
        assert_int_equal(res[0], 0x86);
        assert_int_equal(get_le32(res + 4), 0xd0000000u + 0x1000u * (unsigned)i);
        assert_int_equal(get_le32(res + 8), 0x200);
        assert_int_equal(res[12], 0x89);
        assert_int_equal(res[15], 0x03); /* consumer, edge, active high */
        assert_int_equal(get_le32(res + 17), 5 + i);
        assert_int_equal(res[21], 0x79);
        p = dend;
    }
    assert_true(p == end);
}

static void test_one(void **state) { check_tables(1, 1); }
static void test_none(void **state) { check_tables(1, 0); }
static void test_smp_many(void **state) { check_tables(8, MAX_DISKS); }
static void test_max_cpus(void **state) { check_tables(MAX_CPUS, 3); }

static void test_bounds(void **state)
{
    uint64_t rsdp;
    struct acpi_config c = { .ncpus = 1, .ndev = 1, .dev_size = 0x200 };
    assert_int_equal(acpi_build(buf, 200, BASE, &c, &rsdp), -ENOSPC);
    c.ncpus = 0;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp), -EINVAL);
    c.ncpus = MAX_CPUS + 1;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp), -EINVAL);
    c.ncpus = 1;
    c.ndev = MAX_DISKS + 1;
    assert_int_equal(acpi_build(buf, sizeof(buf), BASE, &c, &rsdp), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_smp_many),
        cmocka_unit_test(test_max_cpus),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
