/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event, to stderr (with a timestamp-free
 * "vdk-nbd: " prefix, journald adds its own) or to syslog once the daemon
 * has forked away from its terminal.  Lines are written whole with one
 * write so concurrent connections do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "nbd-server/server.h"

static bool log_syslog;
static int log_max = NBD_LOG_INFO;

void nbd_log_init(bool use_syslog, int max_level)
{
    log_syslog = use_syslog;
    log_max = max_level;
    if (use_syslog)
        openlog("vdk-nbd", LOG_PID, LOG_DAEMON);
}

void nbd_log(int level, const char *fmt, ...)
{
    if (level > log_max)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (log_syslog) {
        syslog(level, "%s", line);
        return;
    }
    char out[1100];
    int n = snprintf(out, sizeof(out), "vdk-nbd: %s%s\n",
                     level <= NBD_LOG_ERR ? "error: " :
                     level == NBD_LOG_WARNING ? "warning: " : "", line);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(out))
        n = sizeof(out) - 1;
    ssize_t w = write(STDERR_FILENO, out, (size_t)n);
    (void)w;
}
