/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the block-layer unit tests (cmocka).  Include after
 * <cmocka.h> and its prerequisites.
 */
#ifndef VDK_UNIT_UTIL_H
#define VDK_UNIT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "protocols/memory.h"
#include "vdk/block.h"

/* Parse an option string that the test itself wrote; abort on error. */
static inline struct vdk_opts *unit_opts(const char *str)
{
    struct vdk_opts *o = vdk_opts_new();
    struct vdk_error *err = NULL;
    assert_non_null(o);
    if (str && vdk_opts_parse(o, str, NULL, &err) < 0)
        fail_msg("bad test options '%s': %s", str, vdk_error_msg(err));
    return o;
}

/*
 * vdk_open() that must succeed; prints the library's message otherwise.
 * format NULL probes.
 */
static inline struct vdk_node *unit_open(const char *filename, const char *format,
                                         const char *opts, unsigned flags)
{
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    int r = vdk_open(&n, filename, format, unit_opts(opts), flags, &err);
    if (r < 0)
        fail_msg("opening '%s' (%s, %s): %s", filename ? filename : "(options)",
                 format ? format : "probe",
                 opts ? opts : "", vdk_error_msg(err));
    assert_null(err);
    assert_non_null(n);
    return n;
}

/* vdk_open() that must fail with `code`; returns the message (caller frees). */
static inline char *unit_open_fail(const char *filename, const char *format,
                                   const char *opts, unsigned flags, int code)
{
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    int r = vdk_open(&n, filename, format, unit_opts(opts), flags, &err);
    if (r >= 0)
        fail_msg("opening '%s' should have failed", filename ? filename : "(none)");
    assert_int_equal(r, code);
    assert_null(n);
    assert_non_null(err);
    assert_int_equal(err->code, -code);
    char *m = strdup(err->msg);
    vdk_error_free(err);
    return m;
}

/* The memory node at the bottom of n's file chain. */
static inline struct vdk_node *unit_mem(struct vdk_node *n)
{
    while (n && !vdk_memory_stats(n))
        n = vdk_node_file(n);
    assert_non_null(n);
    return n;
}

/* Deterministic, never-repeating-per-call pattern. */
static inline void unit_fill(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

#endif
