/* SPDX-License-Identifier: MIT */
/* The fault filter: one fault's keys, and whether a request fires it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filters/fault.h"

static const char *const op_names[] = { "read", "write", "flush", "trim", "zero" };
#define N_OPS (sizeof(op_names) / sizeof(op_names[0]))

static const struct { const char *name; int err; } errnos[] = {
    { "EIO", EIO }, { "ENOSPC", ENOSPC }, { "EPERM", EPERM }, { "ENOMEM", ENOMEM },
};
#define N_ERRNOS (sizeof(errnos) / sizeof(errnos[0]))

const struct vdk_opt_desc vdk_fault_keys[] = {
    { "ops", VDK_OPT_STRING, "Operations that fail: read, write, flush, trim, zero "
      "or all, joined with |", "all", NULL },
    { "errno", VDK_OPT_STRING, "Error: EIO, ENOSPC, EPERM or ENOMEM", "EIO", NULL },
    { "offset", VDK_OPT_SIZE, "Start of the failing range", "0", NULL },
    { "length", VDK_OPT_SIZE, "Length of the failing range (default: to the end)",
      NULL, NULL },
    { "rate", VDK_OPT_STRING, "Probability that a matching request fails, 0 to 1",
      "1", NULL },
    { "seed", VDK_OPT_NUMBER, "Seed for rate (default: random)", NULL, NULL },
    { "after", VDK_OPT_NUMBER, "Fail from the Nth matching request on", "1", NULL },
    { "once", VDK_OPT_BOOL, "Fail one request, then heal", "off", NULL },
    { "delay", VDK_OPT_STRING, "Slow matching requests by this long (10ms, 1s) "
      "instead of failing them", NULL, NULL },
    { "control", VDK_OPT_STRING, "File of faults, one per line with the keys above, "
      "re-read when it changes (node option only)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

bool fault_opts_have_keys(const struct vdk_opts *o)
{
    for (size_t i = 0; vdk_fault_keys[i].name; i++)
        if (strcmp(vdk_fault_keys[i].name, "control") &&
            vdk_opts_has(o, vdk_fault_keys[i].name))
            return true;
    return false;
}

static int bad(struct vdk_error **errp, const char *ctx, const char *key, const char *val,
               const char *want)
{
    return vdk_error_setf(errp, EINVAL, "%s: invalid %s=%s (%s)", ctx, key, val, want);
}

static int parse_ops(const char *s, unsigned *out)
{
    unsigned ops = 0;
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, "|");
        bool found = false;
        if (len == 3 && strncmp(p, "all", 3) == 0) {
            ops |= FAULT_OP_ALL;
            found = true;
        }
        for (size_t i = 0; i < N_OPS && !found; i++) {
            if (strlen(op_names[i]) == len && strncmp(p, op_names[i], len) == 0) {
                ops |= 1u << i;
                found = true;
            }
        }
        if (!found)
            return -EINVAL;
        if (!p[len])
            break;
        p += len + 1;
    }
    *out = ops;
    return 0;
}

/* "10ms", "1.5s", "250us", "100ns"; a bare number is seconds (nbdkit's
   delay filter reads it so). */
static int parse_delay(const char *s, uint64_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0 || *s == '-' || *s == '+')
        return -EINVAL;
    double mult;
    if (!*end || !strcmp(end, "s"))
        mult = 1e9;
    else if (!strcmp(end, "ms"))
        mult = 1e6;
    else if (!strcmp(end, "us"))
        mult = 1e3;
    else if (!strcmp(end, "ns"))
        mult = 1;
    else
        return -EINVAL;
    v *= mult;
    if (v > (double)FAULT_MAX_DELAY_NS)
        return -ERANGE;
    *ns = (uint64_t)v;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < 0 || v > 1)
        return -EINVAL;
    *out = v;
    return 0;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&s, sizeof(s), 1, f) != 1)
            s = 0;
        fclose(f);
    }
    return s ? s : (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
}

int fault_parse(struct fault *f, struct vdk_opts *o, uint64_t disk_size, const char *ctx,
                struct vdk_error **errp)
{
    memset(f, 0, sizeof(*f));
    f->ops = FAULT_OP_ALL;
    f->err = EIO;
    f->length = UINT64_MAX;
    f->rate = 1;
    f->after = 1;
    atomic_init(&f->matched, 0);
    atomic_init(&f->fired, false);
    /* Unknown keys first, so a typo is named rather than ignored.  Dotted
       keys belong to the child. */
    const char *k, *v;
    for (size_t i = 0; vdk_opts_nth(o, i, &k, &v); i++) {
        if (!strchr(k, '.') && strcmp(k, "driver") && !vdk_opt_desc_find(vdk_fault_keys, k))
            return vdk_error_setf(errp, EINVAL, "%s: unknown key '%s' (in %s=%s)", ctx, k,
                                  k, v);
    }
    const char *s;
    if ((s = vdk_opts_get(o, "ops")) && parse_ops(s, &f->ops) < 0)
        return bad(errp, ctx, "ops", s, "read, write, flush, trim, zero or all, joined "
                   "with |");
    if ((s = vdk_opts_get(o, "errno"))) {
        size_t i = 0;
        while (i < N_ERRNOS && strcmp(s, errnos[i].name))
            i++;
        if (i == N_ERRNOS)
            return bad(errp, ctx, "errno", s, "EIO, ENOSPC, EPERM or ENOMEM");
        f->err = errnos[i].err;
    }
    if ((s = vdk_opts_get(o, "offset"))) {
        if (vdk_parse_size(s, &f->offset) < 0)
            return bad(errp, ctx, "offset", s, "a size such as 1M");
        if (f->offset >= disk_size)
            return vdk_error_setf(errp, EINVAL, "%s: invalid offset=%s (the disk ends at "
                                  "%" PRIu64 ")", ctx, s, disk_size);
    }
    if ((s = vdk_opts_get(o, "length"))) {
        if (vdk_parse_size(s, &f->length) < 0 || f->length == 0)
            return bad(errp, ctx, "length", s, "a size above 0 such as 64K");
    }
    if ((s = vdk_opts_get(o, "rate")) && parse_rate(s, &f->rate) < 0)
        return bad(errp, ctx, "rate", s, "a probability from 0 to 1");
    if ((s = vdk_opts_get(o, "seed"))) {
        if (vdk_parse_uint(s, &f->seed) < 0)
            return bad(errp, ctx, "seed", s, "an unsigned integer");
    } else {
        f->seed = random_seed();
    }
    if ((s = vdk_opts_get(o, "after")) && (vdk_parse_uint(s, &f->after) < 0 || !f->after))
        return bad(errp, ctx, "after", s, "a request number from 1");
    if ((s = vdk_opts_get(o, "once")) && vdk_parse_bool(s, &f->once) < 0)
        return bad(errp, ctx, "once", s, "on or off");
    if ((s = vdk_opts_get(o, "delay"))) {
        int r = parse_delay(s, &f->delay_ns);
        if (r < 0)
            return bad(errp, ctx, "delay", s, r == -ERANGE ? "at most 60s"
                       : "a duration such as 10ms, 250us or 1.5s");
        if (vdk_opts_has(o, "errno"))
            return vdk_error_setf(errp, EINVAL, "%s: delay=%s and errno=%s do not go "
                                  "together (a delayed request does not fail)", ctx, s,
                                  vdk_opts_peek(o, "errno"));
    }
    return 0;
}

int fault_parse_line(struct fault *f, const char *line, uint64_t disk_size,
                     const char *ctx, struct vdk_error **errp)
{
    struct vdk_opts *o = vdk_opts_new();
    if (!o)
        return vdk_error_setf(errp, ENOMEM, "out of memory");
    int r = vdk_opts_parse(o, line, NULL, errp);
    if (r == 0) {
        /* A control line holds fault keys only. */
        const char *k, *v;
        for (size_t i = 0; r == 0 && vdk_opts_nth(o, i, &k, &v); i++)
            if (!vdk_opt_desc_find(vdk_fault_keys, k) || !strcmp(k, "control"))
                r = vdk_error_setf(errp, EINVAL, "%s: unknown key '%s' (in %s=%s)", ctx,
                                   k, k, v);
    }
    if (r == 0)
        r = fault_parse(f, o, disk_size, ctx, errp);
    vdk_opts_free(o);
    return r;
}

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t fault_end(const struct fault *f)
{
    return f->length > UINT64_MAX - f->offset ? UINT64_MAX : f->offset + f->length;
}

bool fault_fires(struct fault *f, unsigned op, uint64_t offset, uint64_t bytes)
{
    if (!(f->ops & op))
        return false;
    if (op != FAULT_OP_FLUSH && (offset >= fault_end(f) || offset + bytes <= f->offset))
        return false;
    uint64_t k = atomic_fetch_add(&f->matched, 1) + 1;
    if (k < f->after)
        return false;
    if (f->once && atomic_load(&f->fired))
        return false;
    if (f->rate < 1) {
        /* The k-th matching request's draw depends on seed and k only. */
        double u = (double)(splitmix64(f->seed ^ splitmix64(k)) >> 11) * 0x1p-53;
        if (u >= f->rate)
            return false;
    }
    if (f->once) {
        bool no = false;
        return atomic_compare_exchange_strong(&f->fired, &no, true);
    }
    return true;
}

bool fault_covers_read(const struct fault *f, uint64_t offset, uint64_t *until)
{
    uint64_t end = fault_end(f);
    *until = UINT64_MAX;
    if (!(f->ops & FAULT_OP_READ) || f->rate == 0 || (f->once && atomic_load(&f->fired)))
        return false;
    if (offset < f->offset) {
        *until = f->offset;
        return false;
    }
    if (offset >= end)
        return false;
    *until = end;
    return true;
}
