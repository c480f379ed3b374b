/* SPDX-License-Identifier: MIT */
/* Freestanding helpers: memory, strings, UART output. */
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

void uart_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts: we poll */
    outb(COM1 + 3, 0x80);
    outb(COM1 + 0, 0x01); /* 115200 */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc1); /* FIFOs on; keep bytes that arrived early */
    outb(COM1 + 4, 0x03);
}

int getch(void)
{
    while (!(inb(COM1 + 5) & 0x01))
        ;
    return inb(COM1);
}

/* Once the transmitter is empty, its 16-byte FIFO takes 16 bytes without
   further polling (halves the port accesses, each a VM exit). */
static void putch(char c)
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

void print(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            putch('\r');
        putch(*s);
    }
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
    print("VDK-GUEST-FAIL: ");
    print(msg);
    print("\n");
    outb(0x64, 0xfe); /* i8042: pulse reset */
    halt_forever();
}
