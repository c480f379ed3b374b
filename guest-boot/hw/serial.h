/* SPDX-License-Identifier: MIT */
/*
 * 8250/16550A UART (COM1, I/O 0x3f8, IRQ 4).  Transmitted bytes go to the
 * output callback at once (the transmitter is always empty); received
 * bytes come from serial_push_input() into a small FIFO.  The interrupt
 * line follows the pending state (IIR), gated by MCR.OUT2 as on a PC.
 * Output and interrupt are typed: the UART holds the console it writes to
 * and the interrupt line it drives, each as what it is.
 */
#ifndef VDK_BOOT_HW_SERIAL_H
#define VDK_BOOT_HW_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest-boot/hw/irq.h"

struct console;

#define SERIAL_RX_FIFO 64

struct serial {
    pthread_mutex_t lock;
    uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
    bool thre_pending;       /* THR-empty interrupt not yet acknowledged */
    uint8_t rx[SERIAL_RX_FIFO];
    unsigned rx_head, rx_len;
    struct irq_line irq;
    int irq_level;
    struct console *con;     /* NULL: output is dropped */
    bool initialized;
};

/* con receives every transmitted byte (console_out(), under the UART
   lock); irq is the line the UART drives. */
void serial_init(struct serial *s, struct irq_line irq, struct console *con);
void serial_destroy(struct serial *s);
/* Register access at offset 0..7 from the base port. */
uint8_t serial_read(struct serial *s, unsigned off);
void serial_write(struct serial *s, unsigned off, uint8_t v);
/* Queue input bytes; returns how many fitted in the FIFO. */
size_t serial_push_input(struct serial *s, const uint8_t *buf, size_t len);

#endif /* VDK_BOOT_HW_SERIAL_H */
