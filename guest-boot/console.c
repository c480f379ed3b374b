/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "guest-boot/console.h"

#define PANIC_TEXT "Kernel panic - not syncing"

int64_t console_elapsed_ns(const struct console *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - c->t0.tv_sec) * 1000000000 +
           (now.tv_nsec - c->t0.tv_nsec);
}

int console_init(struct console *c, struct vm *vm, const char *expect,
                 bool quiet, int log_fd, struct vdk_error **errp)
{
    memset(c, 0, sizeof(*c));
    c->vm = vm;
    c->quiet = quiet;
    c->log_fd = log_fd;
    c->first_output_ns = -1;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    if (expect) {
        int r = regcomp(&c->expect, expect, REG_EXTENDED | REG_NOSUB);
        if (r) {
            char msg[128];
            regerror(r, &c->expect, msg, sizeof(msg));
            return vdk_error_setf(errp, EINVAL, "bad --expect regex '%s': %s",
                                  expect, msg);
        }
        c->have_expect = true;
    }
    return 0;
}

void console_destroy(struct console *c)
{
    if (c->have_expect)
        regfree(&c->expect);
    c->have_expect = false;
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* closed stdout or full disk: drop, keep running */
        buf += n;
        len -= (size_t)n;
    }
}

static void check_line(struct console *c, bool complete)
{
    c->line[c->line_len] = 0;
    if (c->have_expect && !c->matched &&
        regexec(&c->expect, c->line, 0, NULL, 0) == 0) {
        c->matched = true;
        vm_set_verdict(c->vm, VERDICT_MATCHED, "expected output seen");
    }
    if (complete && strstr(c->line, PANIC_TEXT))
        vm_set_verdict(c->vm, VERDICT_PANIC, "guest kernel panic: %s", c->line);
}

void console_out(struct console *c, const uint8_t *buf, size_t len)
{
    if (c->first_output_ns < 0)
        c->first_output_ns = console_elapsed_ns(c);
    if (!c->quiet)
        write_all(STDOUT_FILENO, buf, len);
    if (c->log_fd >= 0)
        write_all(c->log_fd, buf, len);
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = buf[i];
        if (ch == '\n') {
            check_line(c, true);
            c->line_len = 0;
            continue;
        }
        if (ch == '\r' || ch == 0)
            continue;
        if (c->line_len == CONSOLE_LINE_MAX) {
            check_line(c, true);
            c->line_len = 0;
        }
        c->line[c->line_len++] = (char)ch;
        check_line(c, false);
    }
}

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

void console_term_raw(void)
{
    struct termios t;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tio) < 0)
        return;
    t = saved_tio;
    /* Bytes reach the guest as typed; output processing and signals
       (^C ends the run) stay as they were. */
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | IEXTEN);
    t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IXON | ISTRIP);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0)
        tio_saved = 1;
}

void console_term_restore(void)
{
    /* Async-signal-safe: called from fatal signal handlers too. */
    if (tio_saved) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
        tio_saved = 0;
    }
}
