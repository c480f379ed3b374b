/* SPDX-License-Identifier: MIT */
/*
 * The guest console: UART output goes to stdout (unless --quiet), the
 * --console-log file, and the matchers (--expect, kernel panic); terminal
 * input goes to the UART.  The terminal is put in raw mode while the
 * guest runs and restored on every exit path (normal exit, error,
 * signal).
 */
#ifndef VDK_BOOT_CONSOLE_H
#define VDK_BOOT_CONSOLE_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "guest-boot/vm.h"

#define CONSOLE_LINE_MAX 4096

struct console {
    struct vm *vm;
    bool quiet;
    int log_fd;              /* -1: none */
    bool have_expect;
    regex_t expect;
    bool matched;
    char line[CONSOLE_LINE_MAX + 1];
    size_t line_len;
    struct timespec t0;
    int64_t first_output_ns; /* -1 until the first byte */
};

/* Set up; expect may be NULL.  Returns 0 or -EINVAL for a bad regex. */
int console_init(struct console *c, struct vm *vm, const char *expect,
                 bool quiet, int log_fd, struct vdk_error **errp);
void console_destroy(struct console *c);
/* UART output callback (called with the UART lock held). */
void console_out(struct console *c, const uint8_t *buf, size_t len);

/* Nanoseconds since t0. */
int64_t console_elapsed_ns(const struct console *c);

/* Terminal raw mode for stdin (no-op when stdin is not a terminal). */
void console_term_raw(void);
void console_term_restore(void);

#endif /* VDK_BOOT_CONSOLE_H */
