/* SPDX-License-Identifier: MIT */
/*
 * 8250/16550A UART register model (enough for Linux's 8250 driver to detect
 * a 16550A, run interrupt driven, and for polled early consoles).
 */
#include <string.h>

#include "guest-boot/console.h"
#include "guest-boot/hw/serial.h"

enum {
    REG_DATA = 0, REG_IER = 1, REG_IIR = 2, REG_LCR = 3,
    REG_MCR = 4, REG_LSR = 5, REG_MSR = 6, REG_SCR = 7,
};
#define IER_RDI   0x01
#define IER_THRI  0x02
#define IIR_NONE  0x01
#define IIR_THRI  0x02
#define IIR_RDI   0x04
#define IIR_FIFO  0xc0
#define LCR_DLAB  0x80
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

void serial_init(struct serial *s, struct irq_line irq, struct console *con)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->irq = irq;
    s->con = con;
    s->initialized = true;
    s->dll = 12; /* 9600 baud, as after a BIOS */
    s->lcr = 0x03;
}

void serial_destroy(struct serial *s)
{
    if (s->initialized)
        pthread_mutex_destroy(&s->lock);
    s->initialized = false;
}

static uint8_t iir(const struct serial *s)
{
    uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
    if ((s->ier & IER_RDI) && s->rx_len)
        return fifo | IIR_RDI;
    if ((s->ier & IER_THRI) && s->thre_pending)
        return fifo | IIR_THRI;
    return fifo | IIR_NONE;
}

/* Drive the line from the pending state; called with the lock held. */
static void update_irq(struct serial *s)
{
    int level = !(iir(s) & IIR_NONE);
    /* OUT2 gates the interrupt on PC serial ports. */
    if (!(s->mcr & 0x08))
        level = 0;
    if (level != s->irq_level) {
        s->irq_level = level;
        irq_line_set(&s->irq, level);
    }
}

static void rx_put(struct serial *s, uint8_t c)
{
    if (s->rx_len < SERIAL_RX_FIFO) {
        s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_FIFO] = c;
        s->rx_len++;
    }
}

uint8_t serial_read(struct serial *s, unsigned off)
{
    uint8_t v = 0xff;
    pthread_mutex_lock(&s->lock);
    switch (off) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB) {
            v = s->dll;
        } else if (s->rx_len) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
            s->rx_len--;
        } else {
            v = 0;
        }
        break;
    case REG_IER:
        v = (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
        break;
    case REG_IIR:
        v = iir(s);
        /* Reading IIR while it reports THR empty acknowledges it. */
        if ((v & 0x0f) == IIR_THRI)
            s->thre_pending = false;
        break;
    case REG_LCR:
        v = s->lcr;
        break;
    case REG_MCR:
        v = s->mcr;
        break;
    case REG_LSR:
        v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
        break;
    case REG_MSR:
        if (s->mcr & MCR_LOOP) {
            /* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
            v = (uint8_t)(((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) |
                          ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
        } else {
            v = 0xb0; /* DCD, DSR, CTS */
        }
        break;
    case REG_SCR:
        v = s->scr;
        break;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return v;
}

void serial_write(struct serial *s, unsigned off, uint8_t v)
{
    pthread_mutex_lock(&s->lock);
    switch (off) {
    case REG_DATA:
        if (s->lcr & LCR_DLAB) {
            s->dll = v;
            break;
        }
        if (s->mcr & MCR_LOOP)
            rx_put(s, v);
        else if (s->con)
            console_out(s->con, &v, 1);
        /* Sent at once: the holding register is empty again. */
        s->thre_pending = true;
        break;
    case REG_IER:
        if (s->lcr & LCR_DLAB) {
            s->dlm = v;
        } else {
            if ((v & IER_THRI) && !(s->ier & IER_THRI))
                s->thre_pending = true;
            s->ier = v & 0x0f;
        }
        break;
    case REG_IIR: /* FCR */
        s->fcr = v & 0xc9;
        if (v & FCR_CLEAR_RX)
            s->rx_len = 0;
        break;
    case REG_LCR:
        s->lcr = v;
        break;
    case REG_MCR:
        s->mcr = v & 0x1f;
        break;
    case REG_SCR:
        s->scr = v;
        break;
    default:
        break;
    }
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
}

size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    while (n < len && s->rx_len < SERIAL_RX_FIFO)
        rx_put(s, buf[n++]);
    update_irq(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}
