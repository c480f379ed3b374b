/* SPDX-License-Identifier: MIT */
/*
 * vdk test guest: a freestanding 64-bit program (integer C only, no SSE,
 * no red zone) that vdk-boot boots through its bzImage and PVH paths.
 */
#ifndef VDK_GUEST_H
#define VDK_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long size_t;

#define BOOT_BZIMAGE 1
#define BOOT_PVH 2
#define MAX_DEVS 8

static inline void outb(u16 port, u8 v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(u16 port, u16 v)
{
    __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline u32 mmio_read32(u64 addr)
{
    return *(volatile u32 *)addr;
}

static inline void mmio_write32(u64 addr, u32 v)
{
    *(volatile u32 *)addr = v;
}

static inline u8 mmio_read8(u64 addr)
{
    return *(volatile u8 *)addr;
}

static inline void barrier(void)
{
    __asm__ volatile("" ::: "memory");
}

/* lib.c */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
void uart_init(void);     /* polled */
void uart_irq_init(void); /* interrupt driven from here on (checked) */
void uart_polled(void);   /* back to polling (for failures) */
void print(const char *s);
int getch(void); /* wait for a byte from the UART */
void put_dec(u64 v);
void put_hex(u64 v);
void fill64(void *p, u64 pattern, size_t bytes);
int check64(const void *p, u64 pattern, size_t bytes);
/* Print "VDK-GUEST-FAIL: msg" and reset the machine (i8042). */
void fail(const char *msg) __attribute__((noreturn));
void halt_forever(void) __attribute__((noreturn));

/* irq.c: I/O APIC + local APIC interrupts (see there) */
#define IRQ_LINES 24
#define IRQ_VECTOR_BASE 0x50
#define IRQ_COM1 4
typedef void (*irq_handler)(void);
void irq_init(void);
void irq_route(u32 gsi, irq_handler h);
u32 irq_count(u32 gsi);
volatile const u32 *irq_counter(u32 gsi);
int irq_pending_at_lapic(u32 gsi);
/* Wait (interrupts on) until *flag != old; fail after a few seconds. */
void irq_wait(volatile const u32 *flag, u32 old, const char *what);

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                     : "a"(leaf), "c"(0));
}

/* virtio.c */
struct vdev {
    u64 base;
    u32 irq;
};
/* Run the disk test on one device (completions through used-buffer
   interrupts on `irq`); returns 0 or calls fail(). */
int blk_test(int idx, u64 base, u32 irq);

#endif /* VDK_GUEST_H */
