/* SPDX-License-Identifier: MIT */
/*
 * The "fault" filter: injected I/O errors and delays, for testing how a
 * guest, a filesystem or a backup tool behaves when its disk fails (what
 * QEMU's blkdebug and nbdkit's error and delay filters are for).
 *
 *   driver=fault,ops=read|write,errno=EIO,offset=1M,length=64K,
 *     file.driver=qcow2,file.file.filename=disk.qcow2
 *
 * One fault is: the operations it hits (ops), the byte range (offset,
 * length; a request overlapping it by one byte matches; flushes have no
 * range), and what happens to a matching request that fires: it fails
 * with errno, or, with delay, is slowed and then runs.  Whether a
 * matching request fires: requests 1..after-1 never do; with rate, each
 * later one fires with that probability, drawn from a generator seeded
 * by seed and the request's number (so one client's sequence of requests
 * is reproducible); with once=on only the first firing one does.
 *
 * Faults come from the node's own keys and from control=PATH, a file of
 * one fault per line (same keys) that the filter re-reads when it
 * changes; all faults are active together.
 *
 * Files: fault.c (driver), fault-spec.c (parsing one fault, deciding a
 * request), fault-control.c (the control file).
 */
#ifndef VDK_FILTERS_FAULT_H
#define VDK_FILTERS_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vdk/error.h"
#include "vdk/options.h"

/* Bounds on the control file. */
#define FAULT_CONTROL_MAX_BYTES (64u * 1024)
#define FAULT_CONTROL_MAX_LINES 256
/* Longest delay one fault may ask for. */
#define FAULT_MAX_DELAY_NS (60ull * 1000000000ull)

enum fault_op {
    FAULT_OP_READ = 1u << 0,
    FAULT_OP_WRITE = 1u << 1,
    FAULT_OP_FLUSH = 1u << 2,
    FAULT_OP_TRIM = 1u << 3,
    FAULT_OP_ZERO = 1u << 4,
    FAULT_OP_ALL = (1u << 5) - 1,
};

struct fault {
    unsigned ops;            /* FAULT_OP_* */
    int err;                 /* positive errno */
    uint64_t offset, length; /* length UINT64_MAX: to the end */
    double rate;             /* 0..1 */
    uint64_t seed;
    uint64_t after;          /* first matching request that may fire, >= 1 */
    bool once;
    uint64_t delay_ns;       /* > 0: slow down instead of failing */
    /* Run-time state. */
    atomic_uint_fast64_t matched;
    atomic_bool fired;
};

/* Keys of one fault, and control= (the node's option table). */
extern const struct vdk_opt_desc vdk_fault_keys[];

/* True if o names any fault key. */
bool fault_opts_have_keys(const struct vdk_opts *o);

/*
 * Read the fault keys of o (marking them used) into f, defaults for the
 * rest (ops=all, errno=EIO, the whole disk, rate=1, after=1).  disk_size
 * bounds offset.  A bad value is refused with a message naming the key
 * and the value, prefixed by ctx.
 */
int fault_parse(struct fault *f, struct vdk_opts *o, uint64_t disk_size,
                const char *ctx, struct vdk_error **errp);

/* Parse one line of a control file ("ops=write,errno=ENOSPC"). */
int fault_parse_line(struct fault *f, const char *line, uint64_t disk_size,
                     const char *ctx, struct vdk_error **errp);

/*
 * Does request (op, offset, bytes) make f fire?  Counts the request if
 * it matches.  Thread safe.
 */
bool fault_fires(struct fault *f, unsigned op, uint64_t offset, uint64_t bytes);

/* Could f hit a read of the byte at offset?  *until: the next offset where
   the answer may change (for block status). */
bool fault_covers_read(const struct fault *f, uint64_t offset, uint64_t *until);

/* ---- fault-control.c ---- */
struct fault_set {           /* one parse of the control file */
    struct fault *f;
    size_t n;
};

/*
 * Parse control file text (len bytes, at most FAULT_CONTROL_MAX_BYTES and
 * FAULT_CONTROL_MAX_LINES faults; blank lines and '#' comments skipped).
 * On success *out owns its array (free with fault_set_clear).
 */
int fault_set_parse(struct fault_set *out, const char *text, size_t len,
                    uint64_t disk_size, const char *ctx, struct vdk_error **errp);
void fault_set_clear(struct fault_set *s);

struct fault_control;

int fault_control_open(struct fault_control **out, const char *path, uint64_t disk_size,
                       struct vdk_error **errp);
void fault_control_close(struct fault_control *c);
/*
 * The current set, re-read first when the file changed (checked at most
 * every FAULT_CONTROL_POLL_NS; the content itself at least once a second,
 * so an edit within one timestamp tick is seen too).  The set stays valid
 * until fault_control_put().  A file that fails to parse keeps the last
 * good set and logs a warning once.
 */
const struct fault_set *fault_control_get(struct fault_control *c);
void fault_control_put(struct fault_control *c);

#endif /* VDK_FILTERS_FAULT_H */
