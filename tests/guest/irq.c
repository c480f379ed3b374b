/* SPDX-License-Identifier: MIT */
/*
 * vdk test guest: interrupts the way Linux takes them on vdk-boot's
 * machine.  The 8259s are masked; ISA lines go through the I/O APIC
 * (0xfec00000, redirection entry per GSI, edge, active high, to APIC 0)
 * to the local APIC (0xfee00000), which the CPU takes through our IDT.
 * Waiting is `sti; hlt` with the local APIC timer as a watchdog, so a
 * line that never fires fails the run instead of hanging it.
 */
#include "guest.h"

#define IOAPIC 0xfec00000ull
#define LAPIC 0xfee00000ull
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_IRR 0x200
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_DIV 0x3e0
#define VEC_WATCHDOG 0x40
#define VEC_SPURIOUS 0xff

struct idt_entry {
    u16 off_lo, sel;
    u8 ist, type;
    u16 off_mid;
    u32 off_hi, zero;
};

static struct idt_entry idt[256] __attribute__((aligned(16)));
static volatile u32 counts[IRQ_LINES];
static volatile int watchdog_fired;
static irq_handler handlers[IRQ_LINES];
extern char isr_stubs[];

static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC + reg); }
static void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC + reg, v); }

static void ioapic_write(u32 reg, u32 v)
{
    mmio_write32(IOAPIC, reg);
    mmio_write32(IOAPIC + 0x10, v);
}

void isr_dispatch(u64 vec, u64 err, const u64 *frame);
void isr_dispatch(u64 vec, u64 err, const u64 *frame)
{
    if (vec < 32) {
        uart_polled();
        print("vdk-guest: exception ");
        put_dec(vec);
        print(" error ");
        put_hex(err);
        print(" at rip ");
        put_hex(frame[0]);
        print("\n");
        fail("CPU exception");
    }
    if (vec == VEC_SPURIOUS)
        return; /* no EOI for the spurious vector */
    if (vec == VEC_WATCHDOG)
        watchdog_fired = 1;
    else if (vec >= IRQ_VECTOR_BASE && vec < IRQ_VECTOR_BASE + IRQ_LINES) {
        u32 gsi = (u32)(vec - IRQ_VECTOR_BASE);
        counts[gsi]++;
        if (handlers[gsi])
            handlers[gsi]();
    }
    lapic_write(LAPIC_EOI, 0);
}

void irq_init(void)
{
    /* 8259s: initialise (vectors 0x20/0x28, out of the way) and mask. */
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x20);
    outb(0xa1, 0x28);
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);

    for (int v = 0; v < 256; v++) {
        u64 a = (u64)(isr_stubs + 16 * v);
        idt[v] = (struct idt_entry){ (u16)a, 0x10, 0, 0x8e, (u16)(a >> 16),
                                     (u32)(a >> 32), 0 };
    }
    static struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
    idtr.limit = sizeof(idt) - 1;
    idtr.base = (u64)idt;
    __asm__ volatile("lidt %0" : : "m"(idtr));

    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS); /* software enable */
    lapic_write(LAPIC_LVT_TIMER, 1u << 16);        /* masked until armed */
    lapic_write(LAPIC_TIMER_DIV, 0xa);             /* divide by 128 */
}

void irq_route(u32 gsi, irq_handler h)
{
    if (gsi >= IRQ_LINES)
        fail("interrupt line out of range");
    handlers[gsi] = h;
    ioapic_write(0x11 + 2 * gsi, 0);                          /* APIC 0 */
    ioapic_write(0x10 + 2 * gsi, IRQ_VECTOR_BASE + gsi);     /* edge, high */
}

u32 irq_count(u32 gsi)
{
    return counts[gsi];
}

int irq_pending_at_lapic(u32 gsi)
{
    u32 v = IRQ_VECTOR_BASE + gsi;
    return (lapic_read(LAPIC_IRR + 0x10 * (v / 32)) >> (v % 32)) & 1;
}

/*
 * Wait with interrupts enabled until *flag (changed by a handler) differs
 * from `old`.  The watchdog is a one-shot local APIC timer of a few
 * seconds (KVM's APIC timer runs at 1 GHz: 64M ticks at /128 = 8.6 s).
 */
void irq_wait(volatile const u32 *flag, u32 old, const char *what)
{
    watchdog_fired = 0;
    lapic_write(LAPIC_LVT_TIMER, VEC_WATCHDOG);
    lapic_write(LAPIC_TIMER_INIT, 64u << 20);
    while (*flag == old && !watchdog_fired)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    lapic_write(LAPIC_TIMER_INIT, 0);
    lapic_write(LAPIC_LVT_TIMER, 1u << 16);
    if (*flag == old) {
        uart_polled();
        print("vdk-guest: no interrupt: ");
        print(what);
        print("\n");
        fail("an expected interrupt never came");
    }
}

volatile const u32 *irq_counter(u32 gsi)
{
    return &counts[gsi];
}
