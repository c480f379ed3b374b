/* SPDX-License-Identifier: MIT */
/*
 * The "memory" protocol keeps an image in a heap buffer.  It is for tests:
 * options let a test set the request alignment and max transfer it
 * announces, and the counters below show what reached the driver.
 */
#ifndef VDK_BLOCK_MEMORY_H
#define VDK_BLOCK_MEMORY_H

#include <stddef.h>
#include <stdint.h>

struct vdk_node;

struct vdk_memory_stats {
    uint64_t reads, writes, zero_writes, discards, flushes;
    uint64_t max_request;      /* largest request seen */
    uint64_t unaligned;        /* requests not aligned to the announced
                                  alignment (must stay 0) */
    uint64_t fua;              /* writes and zero writes that arrived with
                                  VDK_REQ_FUA (option fua=on) */
};

/* Counters of a memory node (NULL if n is not one). */
const struct vdk_memory_stats *vdk_memory_stats(struct vdk_node *n);
/* Direct view of the bytes, for assertions.  Length in *len. */
uint8_t *vdk_memory_data(struct vdk_node *n, uint64_t *len);

/*
 * Give "memory://NAME" initial contents: every later open of that name
 * starts with a private copy of data[0, len) (a larger "size" option pads
 * it with zeros).  This is how tests and fuzzers open an image held in a
 * buffer through vdk_open(), probing and backing chains included.
 * data == NULL forgets NAME.  Process-wide and thread-safe.  Returns 0,
 * -EFBIG (over the memory driver's 4 GiB bound) or -ENOMEM.
 */
int vdk_memory_preset(const char *name, const void *data, size_t len);

#endif
