/* SPDX-License-Identifier: MIT */
/*
 * The token bucket of vdk/ratelimit.h, kept as one "theoretical arrival
 * time" (GCRA): `due` is when the bytes handed out so far would have gone
 * through at exactly the rate.  A full bucket is `due` at or before now;
 * a request moves `due` on by its cost and waits until `due` is no more
 * than a burst ahead of now.  The lock covers the arithmetic only;
 * callers sleep outside it, each until its own turn.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "vdk/ratelimit.h"

/* The bucket holds this much time's worth of bytes (QEMU: avg / 10). */
#define BURST_NS 100000000ull

struct vdk_ratelimit {
    pthread_mutex_t lock;
    double ns_per_byte;
    uint64_t due; /* CLOCK_MONOTONIC ns */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int vdk_ratelimit_new(struct vdk_ratelimit **out, uint64_t bytes_per_sec)
{
    *out = NULL;
    if (!bytes_per_sec)
        return -EINVAL;
    struct vdk_ratelimit *rl = calloc(1, sizeof(*rl));
    if (!rl)
        return -ENOMEM;
    pthread_mutex_init(&rl->lock, NULL);
    rl->ns_per_byte = 1e9 / (double)bytes_per_sec;
    *out = rl;
    return 0;
}

void vdk_ratelimit_free(struct vdk_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

void vdk_ratelimit_wait(struct vdk_ratelimit *rl, uint64_t bytes)
{
    if (!rl || !bytes)
        return;
    uint64_t now = now_ns();
    pthread_mutex_lock(&rl->lock);
    if (rl->due < now)
        rl->due = now; /* the bucket is full: idle time is not saved up */
    double cost = (double)bytes * rl->ns_per_byte;
    /* Bounded at about 292 years of debt, far past any real transfer. */
    rl->due += cost < 9.2e18 - (double)rl->due ? (uint64_t)cost : (uint64_t)9.2e18 - rl->due;
    uint64_t until = rl->due > BURST_NS ? rl->due - BURST_NS : 0;
    pthread_mutex_unlock(&rl->lock);
    if (until <= now)
        return;
    struct timespec ts = { .tv_sec = (time_t)(until / 1000000000ull),
                           .tv_nsec = (long)(until % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
