/* SPDX-License-Identifier: MIT */
/*
 * A rate limit on bytes transferred, shared by threads: the token bucket
 * behind vdk-img convert -r and commit -r (and vdk_commit()).
 *
 * The bucket fills at the rate and holds a tenth of a second's worth of
 * bytes (QEMU's default burst), so an idle limiter lets that much through
 * at once.  A caller pays for a transfer before making it: the call
 * returns at once while the bucket has tokens, and otherwise sleeps until
 * the bytes taken by every caller so far fit the rate.  A transfer larger
 * than the bucket goes into debt, which later callers wait out, so the
 * average over any stretch of time stays at the rate.
 */
#ifndef VDK_RATELIMIT_H
#define VDK_RATELIMIT_H

#include <stdint.h>

#include "vdk/api.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vdk_ratelimit;

/*
 * A limiter of bytes_per_sec bytes a second (at least 1).  Returns 0, or
 * -EINVAL for a rate of 0, -ENOMEM.
 */
VDK_API int vdk_ratelimit_new(struct vdk_ratelimit **out, uint64_t bytes_per_sec);
/* NULL is allowed. */
VDK_API void vdk_ratelimit_free(struct vdk_ratelimit *rl);
/*
 * Take `bytes` from the bucket, sleeping as long as the rate asks.  Safe
 * to call from any number of threads at once.  rl NULL: no limit, returns
 * at once.
 */
VDK_API void vdk_ratelimit_wait(struct vdk_ratelimit *rl, uint64_t bytes);

#ifdef __cplusplus
}
#endif

#endif
