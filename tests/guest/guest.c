/* SPDX-License-Identifier: MIT */
/*
 * vdk test guest: boot information, ACPI walk, device discovery, the disk
 * tests, and power-off through ACPI S5.
 *
 * Command line words it understands (vdk-boot --append):
 *   vdkguest.action=run|poweroff|hang|panic|reset|triple|echo  (default run)
 *                        echo: read a line from the UART (receive
 *                        interrupts), print it back
 * Every action runs after the interrupt checks: from then on the UART is
 * interrupt driven (THR-empty and receive interrupts through the I/O APIC),
 * disk requests complete through used-buffer interrupts, and power-off is
 * ACPI S5 as Linux does it.
 *   vdkguest.disks=N     fail unless exactly N disks are found
 */
#include "guest.h"

struct boot {
    int kind;
    const char *cmdline;
    u64 rsdp;
};

static struct vdev acpi_devs[MAX_DEVS], cmd_devs[MAX_DEVS];
static int n_acpi, n_cmd;
static u16 pm1a_cnt, pm1a_evt;
static u8 sleep_space;  /* hardware-reduced ACPI: SLEEP_CONTROL_REG */
static u64 sleep_addr;
static int slp_typ = -1;

static int acpi_sum_ok(const u8 *p, u32 len)
{
    u8 s = 0;
    for (u32 i = 0; i < len; i++)
        s = (u8)(s + p[i]);
    return s == 0;
}

static u64 find_rsdp(u64 hint)
{
    if (hint)
        return hint;
    for (u64 a = 0xe0000; a < 0x100000; a += 16)
        if (memcmp((void *)a, "RSD PTR ", 8) == 0 && acpi_sum_ok((u8 *)a, 20))
            return a;
    return 0;
}

/* Devices in the DSDT: a _HID "LNRO0005" followed by its _CRS. */
static void scan_dsdt(const u8 *d, u32 len)
{
    for (u32 i = 0; i + 8 <= len; i++) {
        if (memcmp(d + i, "_S5_", 4) == 0 && i + 8 < len && d[i + 4] == 0x12) {
            u8 el = d[i + 7];
            slp_typ = el == 0x0a ? d[i + 8] : el == 0x01 ? 1 : 0;
        }
        if (memcmp(d + i, "LNRO0005", 8) != 0 || n_acpi == MAX_DEVS)
            continue;
        struct vdev v = { 0, 0 };
        for (u32 j = i + 8; j + 9 <= len && j < i + 96; j++) {
            if (!v.base && d[j] == 0x86 && d[j + 1] == 0x09 && d[j + 2] == 0)
                v.base = *(const u32 *)(d + j + 4);
            if (d[j] == 0x89 && d[j + 1] == 0x06 && d[j + 2] == 0) {
                v.irq = *(const u32 *)(d + j + 5);
                break;
            }
        }
        if (!v.base)
            fail("LNRO0005 device without a memory window");
        acpi_devs[n_acpi++] = v;
    }
}

static void walk_acpi(u64 rsdp)
{
    const u8 *r = (const u8 *)rsdp;
    if (!r || memcmp(r, "RSD PTR ", 8) || !acpi_sum_ok(r, 20))
        fail("no valid RSDP");
    if (r[15] < 2 || !acpi_sum_ok(r, 36))
        fail("RSDP is not ACPI 2.0 or its extended checksum is wrong");
    const u8 *x = (const u8 *)*(const u64 *)(r + 24);
    u32 xlen = *(const u32 *)(x + 4);
    if (memcmp(x, "XSDT", 4) || !acpi_sum_ok(x, xlen))
        fail("bad XSDT");
    int have_fadt = 0, have_madt = 0;
    for (u32 o = 36; o + 8 <= xlen; o += 8) {
        const u8 *t = (const u8 *)*(const u64 *)(x + o);
        u32 tlen = *(const u32 *)(t + 4);
        if (!acpi_sum_ok(t, tlen))
            fail("ACPI table checksum wrong");
        if (memcmp(t, "APIC", 4) == 0)
            have_madt = 1;
        if (memcmp(t, "FACP", 4) != 0)
            continue;
        have_fadt = 1;
        pm1a_cnt = (u16)*(const u32 *)(t + 64);
        pm1a_evt = (u16)*(const u32 *)(t + 56);
        if (tlen >= 256) {
            sleep_space = t[244];
            sleep_addr = *(const u64 *)(t + 248);
        }
        const u8 *d = (const u8 *)*(const u64 *)(t + 140);
        u32 dlen = *(const u32 *)(d + 4);
        if (memcmp(d, "DSDT", 4) || !acpi_sum_ok(d, dlen))
            fail("bad DSDT");
        scan_dsdt(d + 36, dlen - 36);
    }
    if (!have_fadt || !have_madt)
        fail("FADT or MADT missing");
    print("vdk-guest: ACPI tables ok, ");
    put_dec((u64)n_acpi);
    print(" virtio-mmio device(s) in the DSDT\n");
}

static u64 parse_num(const char **s, int base)
{
    u64 v = 0;
    for (;; (*s)++) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0'
              : base == 16 && c >= 'a' && c <= 'f' ? c - 'a' + 10
              : base == 16 && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return v;
        v = v * (u64)base + (u64)d;
    }
}

/* Find "key=" as a word; returns the value or 0. */
static const char *arg_next(const char *cmd, const char *key, const char **after)
{
    size_t kl = strlen(key);
    for (const char *p = cmd; p && *p; p++) {
        if ((p == cmd || p[-1] == ' ') && strncmp(p, key, kl) == 0) {
            *after = p + kl;
            return p + kl;
        }
    }
    return 0;
}

static void parse_cmdline_devices(const char *cmd)
{
    const char *p = cmd, *v;
    while ((v = arg_next(p, "virtio_mmio.device=", &p)) && n_cmd < MAX_DEVS) {
        u64 size = parse_num(&v, 10);
        if (*v == 'K' || *v == 'k')
            v++, size <<= 10;
        if (*v++ != '@' || *v++ != '0' || *v++ != 'x')
            fail("bad virtio_mmio.device= on the command line");
        u64 base = parse_num(&v, 16);
        if (*v++ != ':')
            fail("bad virtio_mmio.device= on the command line");
        cmd_devs[n_cmd].base = base;
        cmd_devs[n_cmd].irq = (u32)parse_num(&v, 10);
        n_cmd++;
        (void)size;
    }
}

static inline u16 inw(u16 port)
{
    u16 v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/*
 * ACPI S5 as Linux (ACPICA's legacy sleep) does it: the machine must be in
 * ACPI mode (SCI_EN), wake status is cleared, SLP_TYP is written first and
 * then SLP_TYP | SLP_EN.  vdk-boot stops the vCPUs at that write, so the
 * failure line after it must never appear.
 */
static void power_off(void)
{
    print("vdk-guest: powering off\n");
    uart_polled();
    if (pm1a_cnt && slp_typ >= 0) {
        if (!(inw(pm1a_cnt) & 1))
            fail("PM1a_CNT.SCI_EN is clear: not in ACPI mode");
        if (pm1a_evt)
            outw(pm1a_evt, 0xffff); /* clear status bits (write 1s) */
        outw(pm1a_cnt, (u16)(slp_typ << 10));
        outw(pm1a_cnt, (u16)((slp_typ << 10) | (1 << 13)));
    } else if (sleep_addr && slp_typ >= 0 && sleep_space == 0) {
        *(volatile u8 *)sleep_addr = (u8)(((slp_typ & 7) << 2) | (1 << 5));
    } else if (sleep_addr && slp_typ >= 0 && sleep_space == 1) {
        outb((u16)sleep_addr, (u8)(((slp_typ & 7) << 2) | (1 << 5)));
    }
    fail("ran on after the ACPI S5 power-off write");
}

/* vdk-boot says it is a hypervisor, KVM, and offers kvm-clock. */
static void check_cpuid(void)
{
    u32 a, b, c, d;
    cpuid(1, &a, &b, &c, &d);
    if (!(c >> 31))
        fail("CPUID.1:ECX.hypervisor is clear");
    cpuid(0x40000000, &a, &b, &c, &d);
    if (memcmp(&b, "KVMK", 4) || memcmp(&c, "VMKV", 4) || memcmp(&d, "M\0\0\0", 4))
        fail("no KVM signature at CPUID 0x40000000");
    u32 max = a;
    cpuid(0x40000001, &a, &b, &c, &d);
    print("vdk-guest: CPUID: hypervisor KVM, leaves to ");
    put_hex(max);
    print(", features ");
    put_hex(a);
    print((a & 0x9) ? ", kvm-clock\n" : "\n");
}

static void triple_fault(void)
{
    static const struct { u16 limit; u64 base; } __attribute__((packed)) idt = { 0, 0 };
    __asm__ volatile("lidt %0; ud2" : : "m"(idt));
    halt_forever();
}

static int action_is(const char *cmd, const char *a)
{
    const char *p, *v = arg_next(cmd, "vdkguest.action=", &p);
    size_t n = strlen(a);
    return v && strncmp(v, a, n) == 0 && (v[n] == 0 || v[n] == ' ');
}

void guest_main(u64 kind, u64 info);
void guest_main(u64 kind, u64 info)
{
    struct boot b = { (int)kind, "", 0 };
    uart_init();
    if (kind == BOOT_PVH) {
        const u8 *si = (const u8 *)info;
        if (*(const u32 *)si != 0x336ec578)
            fail("bad hvm_start_info magic");
        b.cmdline = (const char *)*(const u64 *)(si + 24);
        b.rsdp = *(const u64 *)(si + 32);
        print("vdk-guest: started through the PVH entry\n");
    } else {
        const u8 *zp = (const u8 *)info;
        if (*(const u32 *)(zp + 0x202) != 0x53726448)
            fail("zero page lacks the setup header");
        b.cmdline = (const char *)(u64)*(const u32 *)(zp + 0x228);
        b.rsdp = *(const u64 *)(zp + 0x70);
        print("vdk-guest: started through the bzImage 64-bit entry, ");
        put_dec(zp[0x1e8]);
        print(" e820 entries\n");
    }
    if (!b.cmdline)
        b.cmdline = "";
    print("vdk-guest: command line: ");
    print(b.cmdline);
    print("\n");

    walk_acpi(find_rsdp(b.rsdp));
    check_cpuid();
    /* From here on the UART runs on interrupts. */
    irq_init();
    uart_irq_init();

    if (action_is(b.cmdline, "hang")) {
        print("vdk-guest: hanging\n");
        halt_forever();
    }
    if (action_is(b.cmdline, "panic")) {
        print("Kernel panic - not syncing: vdk-guest test panic\n");
        halt_forever();
    }
    if (action_is(b.cmdline, "reset"))
        fail("reset requested");
    if (action_is(b.cmdline, "triple"))
        triple_fault();
    if (action_is(b.cmdline, "echo")) {
        char line[64];
        int n = 0, ch;
        print("vdk-guest: type a line\n");
        while ((ch = getch()) != '\n' && ch != '\r')
            if (n < (int)sizeof(line) - 1)
                line[n++] = (char)ch;
        line[n] = 0;
        print("vdk-guest: got '");
        print(line);
        print("'\n");
        power_off();
    }
    if (action_is(b.cmdline, "poweroff"))
        power_off();

    /* Devices may be announced by ACPI, the command line or both (vdk-boot
       does both); when both, they must agree. */
    parse_cmdline_devices(b.cmdline);
    if (n_acpi == 0) {
        for (int i = 0; i < n_cmd; i++)
            acpi_devs[i] = cmd_devs[i];
        n_acpi = n_cmd;
    } else if (n_cmd == 0) {
        n_cmd = n_acpi;
        for (int i = 0; i < n_acpi; i++)
            cmd_devs[i] = acpi_devs[i];
    }
    if (n_cmd != n_acpi)
        fail("ACPI and the command line list different virtio-mmio devices");
    for (int i = 0; i < n_cmd; i++)
        if (cmd_devs[i].base != acpi_devs[i].base ||
            cmd_devs[i].irq != acpi_devs[i].irq) {
            print("vdk-guest: ACPI ");
            put_hex(acpi_devs[i].base);
            print(" irq ");
            put_dec(acpi_devs[i].irq);
            print(", command line ");
            put_hex(cmd_devs[i].base);
            print(" irq ");
            put_dec(cmd_devs[i].irq);
            print("\n");
            fail("ACPI and the command line disagree on a device");
        }
    const char *p, *nd = arg_next(b.cmdline, "vdkguest.disks=", &p);
    if (nd && (int)parse_num(&nd, 10) != n_acpi)
        fail("unexpected number of disks");

    for (int i = 0; i < n_acpi; i++)
        blk_test(i, acpi_devs[i].base, acpi_devs[i].irq);
    print("VDK-GUEST-PASS\n");
    power_off();
}
