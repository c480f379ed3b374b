/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the scalar parsers of block/units.c (sizes, numbers,
 * booleans) and the size printer.
 *
 * Checked beyond "no crash": a size that parses is at most INT64_MAX, is
 * the plain number when there is no suffix, and grows with its suffix;
 * failures leave the output alone; vdk_size_to_str prints "<3 digits>
 * <unit>" for any value (the input's first 8 bytes).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/options.h"
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: a number, a fraction, an
   exponent, a suffix. */
static const char *const size_words[] = {
    "0", "1", "9", ".", "5", "e", "E", "-", "+", " ", "0x", "k", "K", "M", "G", "T", "P",
    "E", "B", "b", "KiB", "MB", "kB", "on", "off", "yes", "no", "true", "false",
    "9223372036854775807", "9223372036854775808", "18446744073709551616", "8E", "7.99E",
    "16383P", "0.0000001K", "1e19",
};
static const size_t size_bounds[] = { 19, 20, 255 };
static const struct ft_grammar size_grammar = {
    ".", 0, false, size_words, sizeof(size_words) / sizeof(size_words[0]), size_bounds, 3,
};
FT_MUTATOR(size_grammar)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_size_str(uint64_t v)
{
    char *s = vdk_size_to_str(v);
    if (!s)
        return;
    /* e.g. "0 B", "95.4 MiB", "1e+03 KiB", "0.977 MiB" */
    const char *sp = strchr(s, ' ');
    if (!sp || strlen(s) > 16 || !isdigit((unsigned char)s[0]))
        abort();
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    bool ok = false;
    for (int i = 0; i < 7; i++)
        ok |= strcmp(sp + 1, units[i]) == 0;
    if (!ok)
        abort();
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';

    uint64_t v = 0xdeadbeef;
    int r = vdk_parse_size(s, &v);
    if (r != 0 && r != -EINVAL && r != -ERANGE)
        abort();
    if (r < 0 && v != 0xdeadbeef)
        abort();
    if (r == 0) {
        if (v > INT64_MAX)
            abort();
        size_t len = strlen(s);
        /* Digits only: exactly the number. */
        if (strspn(s, "0123456789") == len) {
            uint64_t d = 0;
            for (size_t i = 0; i < len; i++)
                d = d * 10 + (uint64_t)(s[i] - '0');
            if (len <= 19 && d != v)
                abort();
        } else if (len > 1 && strspn(s, "0123456789") == len - 1) {
            /* Integer with a suffix: a multiple of that unit. */
            char c = (char)tolower((unsigned char)s[len - 1]);
            const char *u = strchr("bkmgtpe", c);
            if (!u)
                abort();
            int shift = 10 * (int)(u - "bkmgtpe");
            if (v & ((1ull << shift) - 1))
                abort();
        }
        check_size_str(v);
    }

    v = 0xdeadbeef;
    r = vdk_parse_uint(s, &v);
    if ((r != 0 && r != -EINVAL && r != -ERANGE) || (r < 0 && v != 0xdeadbeef))
        abort();
    bool b = true;
    r = vdk_parse_bool(s, &b);
    if (r != 0 && (r != -EINVAL || !b))
        abort();

    if (size >= 8) {
        uint64_t raw;
        memcpy(&raw, data, 8);
        check_size_str(raw);
    }
    return 0;
}
