/* SPDX-License-Identifier: MIT */
/*
 * Progress reporting for long vdk-img operations (convert -p, compare -p).
 *
 * Output goes to stdout, as qemu-img's does.
 *  - stdout is a terminal: one line redrawn in place with '\r', a bar,
 *    the percentage, the rate in MiB/s and the estimated time left, e.g.
 *      [##########..........]  50.00%   412.3 MiB/s  ETA 0:00:02
 *    redrawn at most ten times a second.
 *  - stdout is a pipe or a file: one plain line each time another tenth
 *    is done, in qemu-img's number style, so logs stay readable:
 *      "    (10.00/100%)\n" ... "    (100.00/100%)\n"
 * The last call, progress_finish(), ends the in-place line with '\n'.
 *
 * Not thread-safe: callers serialise updates (the convert engine calls it
 * under its lock).
 */
#ifndef VDK_IMG_PROGRESS_H
#define VDK_IMG_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct progress;

/*
 * A reporter writing to `out` (stdout in the programs).  When `enabled`
 * is false every call is a no-op, so callers need not test -p/-q.
 * Returns NULL only on allocation failure (callers may pass NULL around:
 * every function accepts it).
 */
struct progress *progress_new(bool enabled, FILE *out);

/* Report that `done` of `total` units are finished (done <= total). */
void progress_update(struct progress *p, uint64_t done, uint64_t total);

/* Print 100% and end the line. */
void progress_finish(struct progress *p);

/* End an unfinished line (after an error) without claiming 100%. */
void progress_abort(struct progress *p);

void progress_free(struct progress *p);

#endif
