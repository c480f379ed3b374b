/* SPDX-License-Identifier: MIT */
/*
 * Progress reporting for every vdk-img command with -p (convert, compare,
 * commit, rebase, amend): one behaviour for all.
 *
 * Output goes to stdout, as qemu-img's does.
 *  - stdout is a terminal: one line redrawn in place with '\r', a bar,
 *    the percentage, the rate in MiB/s and the estimated time left, e.g.
 *      [##########..........]  50.00%   412.3 MiB/s  ETA 0:00:02
 *    redrawn at most ten times a second.
 *  - stdout is a pipe or a file: exactly qemu-img's output, which scripts
 *    and libvirt read: "    (0.00/100%)\r", then a line each time the
 *    percentage moved by more than 1, "    (100.00/100%)\r" and '\n'.
 * progress_finish() ends the in-place line with '\n'.
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

/*
 * A message is about to go to the same stream.  On a terminal the bar's
 * line is ended first; on a pipe the message follows the last '\r' as in
 * qemu-img (compare's "Images are identical."), and progress_end() then
 * prints the final '\n'.
 */
void progress_message(struct progress *p);
void progress_end(struct progress *p);

void progress_free(struct progress *p);

/* After an operation that returned r: finish (r >= 0) or abort, and free. */
void progress_close(struct progress *p, int r);

#endif
