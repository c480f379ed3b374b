/* SPDX-License-Identifier: MIT */
/* Freestanding helpers: memory, strings, the UART. */
#include "guest.h"

#define COM1 0x3f8

void *memset(void *d, int c, size_t n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    u8 *p = d;
    const u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p - *q;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (u8)*a - (u8)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

/*
 * Word-wide fill and check as single string instructions: guest kernel
 * code is slow under an instruction emulator (kvm_pvm), and one rep
 * instruction costs far less there than a loop.
 */
void fill64(void *p, u64 pattern, size_t bytes)
{
    size_t n = bytes / 8;
    __asm__ volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(pattern) : "memory");
}

int check64(const void *p, u64 pattern, size_t bytes)
{
    size_t n = bytes / 8;
    if (!n)
        return 0;
    u8 differ;
    __asm__ volatile("repe scasq; setne %2"
                     : "+D"(p), "+c"(n), "=q"(differ)
                     : "a"(pattern) : "memory", "cc");
    return differ ? -1 : 0;
}

/*
 * The UART.  Until uart_irq_init() it is polled (as Linux's early console
 * and printk are); after it, output goes through a ring that the THR-empty
 * interrupt drains and input arrives through the receive interrupt, the
 * paths Linux's 8250 driver uses for everything written to /dev/console.
 */
#define IER_RDI 0x01
#define IER_THRI 0x02
#define MCR_DTR_RTS 0x03
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define TX_RING 4096
#define RX_RING 256
#define LOOP_BYTE 0x01 /* a byte nobody types */

static int irq_mode;
static u8 ier;
static u8 tx_ring[TX_RING];
static volatile u32 tx_head, tx_tail;   /* tail: next byte to send */
static u8 rx_ring[RX_RING];
static volatile u32 rx_head, rx_tail;   /* head: next free slot */
static volatile u32 thri_irqs, rx_irqs;

void uart_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts: we poll */
    outb(COM1 + 3, 0x80);
    outb(COM1 + 0, 0x01); /* 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc1); /* FIFOs on; keep bytes that arrived early */
    outb(COM1 + 4, MCR_DTR_RTS);
}

static void set_ier(u8 v)
{
    ier = v;
    outb(COM1 + 1, v);
}

/* Transmit-holding-register empty: up to a FIFO's worth, or stop. */
static void tx_fill(void)
{
    for (int i = 0; i < 16 && tx_tail != tx_head; i++) {
        outb(COM1, tx_ring[tx_tail % TX_RING]);
        tx_tail++;
    }
    if (tx_tail == tx_head)
        set_ier(ier & (u8)~IER_THRI);
}

static void uart_isr(void)
{
    for (int n = 0; n < 16; n++) {
        u8 iir = inb(COM1 + 2);
        if (iir & 1)
            break;
        switch (iir & 0x0e) {
        case 0x04: /* received data */
        case 0x0c: /* character timeout */
            while (inb(COM1 + 5) & 0x01) {
                u8 c = inb(COM1);
                if (rx_head - rx_tail < RX_RING)
                    rx_ring[rx_head++ % RX_RING] = c;
            }
            rx_irqs++;
            break;
        case 0x02:
            thri_irqs++;
            tx_fill();
            break;
        default:
            inb(COM1 + 6); /* modem status */
            break;
        }
    }
}

void uart_polled(void)
{
    if (irq_mode) {
        irq_mode = 0;
        set_ier(0);
    }
}

/*
 * Interrupt-driven mode, checked step by step at the interrupt
 * controller: with IER.THRI and MCR.OUT2 set, IRQ 4 must be pending in the
 * local APIC's IRR (interrupts are still disabled), and once enabled the
 * CPU must take it.  Then a byte
 * sent in loopback mode must come back through the receive interrupt.
 */
void uart_irq_init(void)
{
    irq_route(IRQ_COM1, uart_isr);
    outb(COM1 + 4, MCR_DTR_RTS);
    set_ier(IER_RDI | IER_THRI);
    /* (OUT2 gates the line on a PC, and in vdk-boot; QEMU's UART ignores
       OUT2, so its absence is not checked.) */
    u32 before = thri_irqs;
    outb(COM1 + 4, MCR_DTR_RTS | MCR_OUT2);
    int pending = 0;
    for (int i = 0; i < 1000 && !pending; i++)
        pending = irq_pending_at_lapic(IRQ_COM1);
    if (!pending)
        fail("THR-empty interrupt (IER.THRI with MCR.OUT2) is not pending for IRQ 4 at the local APIC");
    irq_wait(&thri_irqs, before, "THR-empty interrupt on IRQ 4");
    irq_mode = 1;
    print("vdk-guest: UART THR-empty interrupt pending at the local APIC and taken\n");

    /* Receive interrupt, with the UART looping its output back. */
    while (tx_tail != tx_head)
        irq_wait(&tx_tail, tx_tail, "THR-empty interrupt on IRQ 4");
    set_ier(IER_RDI);
    outb(COM1 + 4, MCR_DTR_RTS | MCR_OUT2 | MCR_LOOP);
    u32 rx_before = rx_head;
    outb(COM1, LOOP_BYTE);
    irq_wait(&rx_head, rx_before, "receive interrupt on IRQ 4 (loopback)");
    outb(COM1 + 4, MCR_DTR_RTS | MCR_OUT2);
    /* Input typed before this (vdkguest.action=echo) is queued ahead of
       the loopback byte: take out the loopback byte alone. */
    u32 i = rx_head;
    while (i != rx_tail && rx_ring[(i - 1) % RX_RING] != LOOP_BYTE)
        i--;
    if (i == rx_tail)
        fail("loopback byte did not come back");
    for (; i != rx_head; i++)
        rx_ring[(i - 1) % RX_RING] = rx_ring[i % RX_RING];
    rx_head--;
    print("vdk-guest: UART receive interrupt ok (loopback)\n");
}

int getch(void)
{
    if (!irq_mode) {
        while (!(inb(COM1 + 5) & 0x01))
            ;
        return inb(COM1);
    }
    while (rx_tail == rx_head)
        irq_wait(&rx_head, rx_head, "receive interrupt on IRQ 4");
    return rx_ring[rx_tail++ % RX_RING];
}

/* Once the transmitter is empty, its 16-byte FIFO takes 16 bytes without
   further polling (halves the port accesses, each a VM exit). */
static void putch_polled(char c)
{
    static int room;
    if (room == 0) {
        while (!(inb(COM1 + 5) & 0x20))
            ;
        room = 16;
    }
    outb(COM1, (u8)c);
    room--;
}

static void putch(char c)
{
    if (!irq_mode) {
        putch_polled(c);
        return;
    }
    while (tx_head - tx_tail >= TX_RING)
        irq_wait(&tx_tail, tx_tail, "THR-empty interrupt on IRQ 4");
    tx_ring[tx_head % TX_RING] = (u8)c;
    tx_head++;
}

/* In interrupt mode: queue, start the transmitter (enabling THRI with an
   empty THR raises the interrupt), and wait until the ring drained. */
void print(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            putch('\r');
        putch(*s);
    }
    if (!irq_mode || tx_tail == tx_head)
        return;
    if (!(ier & IER_THRI))
        set_ier(ier | IER_THRI);
    while (tx_tail != tx_head)
        irq_wait(&tx_tail, tx_tail, "THR-empty interrupt on IRQ 4");
}

void put_dec(u64 v)
{
    char b[24];
    int i = 23;
    b[i] = 0;
    do {
        b[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    print(b + i);
}

void put_hex(u64 v)
{
    char b[20];
    int i = 19;
    b[i] = 0;
    do {
        b[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    b[--i] = 'x';
    b[--i] = '0';
    print(b + i);
}

void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

void fail(const char *msg)
{
    uart_polled();
    print("VDK-GUEST-FAIL: ");
    print(msg);
    print("\n");
    outb(0x64, 0xfe); /* i8042: pulse reset */
    halt_forever();
}
