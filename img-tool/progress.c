/* SPDX-License-Identifier: MIT */
/* Progress reporting: a redrawn bar on terminals, qemu-img's lines elsewhere. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define BAR_WIDTH 20
#define REDRAW_NS 100000000ull /* at most ten redraws a second */
#define MIN_STEP 1.0            /* qemu-img's min_skip: print after 1% more */

struct progress {
    bool enabled;
    bool tty;
    bool line_open;      /* an in-place line was drawn and not ended */
    bool owe_newline;    /* pipes: a message followed the line; end with '\n' */
    FILE *out;
    uint64_t start_ns;
    uint64_t last_draw_ns;
    double last_pct;     /* pipes: the percentage printed last, -1 none */
    uint64_t done, total;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct progress *progress_new(bool enabled, FILE *out)
{
    struct progress *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->enabled = enabled;
    p->out = out;
    p->tty = enabled && isatty(fileno(out));
    p->start_ns = now_ns();
    p->last_pct = -1;
    return p;
}

static double percent(uint64_t done, uint64_t total)
{
    if (total == 0)
        return 100.0;
    if (done >= total)
        return 100.0;
    return (double)done * 100.0 / (double)total;
}

/* "[#####.....]  25.00%   12.3 MiB/s  ETA 0:00:07" */
static void draw_bar(struct progress *p, bool final)
{
    double pct = percent(p->done, p->total);
    int fill = (int)(pct * BAR_WIDTH / 100.0);
    char bar[BAR_WIDTH + 1];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
    bar[BAR_WIDTH] = '\0';

    double secs = (double)(now_ns() - p->start_ns) / 1e9;
    double rate = secs > 0 ? (double)p->done / secs : 0.0; /* bytes/s */
    char eta[32] = "--:--:--";
    if (final) {
        unsigned s = (unsigned)(secs + 0.5);
        snprintf(eta, sizeof(eta), "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
    } else if (rate > 0 && p->total >= p->done) {
        double left = (double)(p->total - p->done) / rate;
        if (left < 360000.0) {
            unsigned s = (unsigned)(left + 0.5);
            snprintf(eta, sizeof(eta), "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
        }
    }
    fprintf(p->out, "\r[%s] %6.2f%% %9.1f MiB/s  %s %s ", bar, pct,
            rate / (1024.0 * 1024.0), final ? "took" : "ETA", eta);
    fflush(p->out);
    p->line_open = true;
}

/* qemu-img's progress line for pipes and files: "    (12.50/100%)\r",
   printed at 0, at 100 and whenever it moved by more than MIN_STEP. */
static void print_qemu_line(struct progress *p)
{
    double pct = percent(p->done, p->total);
    if (p->last_pct >= 0 && pct <= p->last_pct + MIN_STEP && pct != 100.0)
        return;
    if (pct == p->last_pct)
        return;
    p->last_pct = pct;
    fprintf(p->out, "    (%3.2f/100%%)\r", pct);
    fflush(p->out);
    p->line_open = true;
}

void progress_update(struct progress *p, uint64_t done, uint64_t total)
{
    if (!p || !p->enabled)
        return;
    p->done = done;
    p->total = total;
    if (!p->tty) {
        print_qemu_line(p);
        return;
    }
    uint64_t t = now_ns();
    if (p->line_open && t - p->last_draw_ns < REDRAW_NS)
        return;
    p->last_draw_ns = t;
    draw_bar(p, false);
}

void progress_finish(struct progress *p)
{
    if (!p || !p->enabled)
        return;
    if (p->total == 0)
        p->total = 1;
    p->done = p->total;
    if (!p->tty)
        print_qemu_line(p);
    else
        draw_bar(p, true);
    fputc('\n', p->out);
    fflush(p->out);
    p->line_open = false;
}

void progress_abort(struct progress *p)
{
    if (!p || !p->enabled || !p->line_open)
        return;
    fputc('\n', p->out);
    fflush(p->out);
    p->line_open = false;
}

void progress_message(struct progress *p)
{
    if (!p || !p->enabled || !p->line_open)
        return;
    if (p->tty) {
        progress_abort(p);
        return;
    }
    p->owe_newline = true;
}

void progress_end(struct progress *p)
{
    if (!p || !p->enabled || !(p->owe_newline || p->line_open))
        return;
    fputc('\n', p->out);
    fflush(p->out);
    p->line_open = p->owe_newline = false;
}

void progress_free(struct progress *p)
{
    free(p);
}

void progress_close(struct progress *p, int r)
{
    if (r < 0)
        progress_abort(p);
    else
        progress_finish(p);
    progress_free(p);
}
