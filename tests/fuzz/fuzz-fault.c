/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the fault filter's control file (filters/fault-control.c)
 * and its keys (filters/fault-spec.c).  The input is control file text;
 * each parsed fault is then asked about a few requests.
 *
 * Checked beyond "no crash": a failed parse says why, a successful one
 * stays within the line bound, and every fault's fields are in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "filters/fault.h"
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: one fault a line, keys
   and values as the filter takes them. */
static const char *const fault_words[] = {
    "ops=", "errno=", "offset=", "length=", "rate=", "seed=", "after=", "once=", "delay=",
    "control=", "read", "write", "flush", "trim", "zero", "all", "read|write", "EIO",
    "ENOSPC", "EROFS", "EPERM", "5", "on", "off", "1M", "64K", "1G", "0.5", "1e-9", "10ms",
    "1.5s", "60s", "61s", "1ns", "# c\n", "\n", "\r\n",
};
static const size_t fault_bounds[] = { 4096, 1024 };
static const struct ft_grammar fault_grammar = {
    ",=|", 0, true, fault_words, sizeof(fault_words) / sizeof(fault_words[0]), fault_bounds, 2,
};
FT_MUTATOR(fault_grammar)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FAULT_CONTROL_MAX_BYTES + 16)
        return 0;
    struct fault_set set;
    struct vdk_error *err = NULL;
    int r = fault_set_parse(&set, (const char *)data, size, 1u << 30, "fuzz", &err);
    if (r < 0) {
        if (!err || !err->msg || !*err->msg)
            abort();
        vdk_error_free(err);
        return 0;
    }
    if (err || set.n > FAULT_CONTROL_MAX_LINES)
        abort();
    for (size_t i = 0; i < set.n; i++) {
        struct fault *f = &set.f[i];
        if (!f->ops || (f->ops & ~FAULT_OP_ALL) || f->err <= 0 || !f->after ||
            !(f->rate >= 0 && f->rate <= 1) || f->delay_ns > FAULT_MAX_DELAY_NS ||
            f->offset >= (1u << 30) || !f->length)
            abort();
        uint64_t until;
        for (unsigned op = 1; op <= FAULT_OP_ZERO; op <<= 1) {
            (void)fault_fires(f, op, 0, 1);
            (void)fault_fires(f, op, UINT64_MAX - 1, 1);
            (void)fault_fires(f, op, f->offset, 1);
        }
        (void)fault_covers_read(f, f->offset, &until);
        (void)fault_covers_read(f, UINT64_MAX - 1, &until);
    }
    fault_set_clear(&set);
    return 0;
}
