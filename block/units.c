/* SPDX-License-Identifier: MIT */
/* Parsers for sizes, numbers and booleans from untrusted strings. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/options.h"

static int suffix_shift(char c)
{
    switch (c) {
    case 'b': case 'B': return 0;
    case 'k': case 'K': return 10;
    case 'm': case 'M': return 20;
    case 'g': case 'G': return 30;
    case 't': case 'T': return 40;
    case 'p': case 'P': return 50;
    case 'e': case 'E': return 60;
    default: return -1;
    }
}

int vdk_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL; /* also rejects "-1", " 1", "" */
    uint64_t ip = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (ip > (UINT64_MAX - d) / 10)
            return -ERANGE;
        ip = ip * 10 + d;
        p++;
    }
    uint64_t fnum = 0, fden = 1;
    bool has_frac = false;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        has_frac = true;
        while (isdigit((unsigned char)*p)) {
            if (fden < 1000000000ull) { /* keep 9 digits, ignore the rest */
                fnum = fnum * 10 + (uint64_t)(*p - '0');
                fden *= 10;
            }
            p++;
        }
    }
    int shift = 0;
    if (*p) {
        shift = suffix_shift(*p);
        if (shift < 0 || p[1])
            return -EINVAL;
    }
    if (has_frac && shift == 0)
        return -EINVAL; /* fractional bytes make no sense */
    if (shift && ip > (UINT64_MAX >> shift))
        return -ERANGE;
    uint64_t v = ip << shift;
    if (has_frac) {
        long double f = (long double)fnum / (long double)fden * (long double)(1ull << shift);
        uint64_t fv = (uint64_t)f;
        if (v > UINT64_MAX - fv)
            return -ERANGE;
        v += fv;
    }
    if (v > INT64_MAX)
        return -ERANGE;
    *out = v;
    return 0;
}

int vdk_parse_uint(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno == ERANGE)
        return -ERANGE;
    if (!end || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int vdk_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "on", "true", "yes", "1", NULL };
    static const char *const no[] = { "off", "false", "no", "0", NULL };
    if (!s)
        return -EINVAL;
    for (int i = 0; yes[i]; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * Human size the way qemu-img prints it: three significant digits in the
 * largest binary unit that keeps the figure below 1000 ("95.4 MiB").
 * In double, as qemu computes it: above 2^53 the conversion rounds, and
 * byte-for-byte output depends on rounding the same way.
 */
char *vdk_size_to_str(uint64_t bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    int i = 0;
    double d = (double)bytes, unit = 1;
    while (i < 6 && d >= 1000.0 * unit) {
        unit *= 1024;
        i++;
    }
    char *s = NULL;
    if (asprintf(&s, "%0.3g %s", d / unit, units[i]) < 0)
        return NULL;
    return s;
}
