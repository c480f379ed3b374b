/* SPDX-License-Identifier: MIT */
/*
 * Read-only mappings of image files, for zero-copy reads (vdk_node_map).
 *
 * One mapping per file node, of the whole file as long as it was when
 * first asked for, made on first use and kept until the node closes.
 * Only files that cannot legitimately change size under it are mapped:
 * the file driver asks only for nodes that hold the reader's image lock
 * (which denies writers and resizes to every vdk and QEMU process).
 *
 * A process that ignores the locks can still truncate the file.  Touching
 * a page past the new end would raise SIGBUS; the handler this module
 * installs (once, process-wide, chaining to any earlier handler for
 * faults elsewhere) puts a page of zeros there instead and marks the
 * mapping damaged.  From then on vdk_file_map_get() and _put() return
 * -EFAULT, so a caller that used the bytes learns it must not trust them.
 */
#ifndef VDK_PROTOCOLS_FILE_MAP_H
#define VDK_PROTOCOLS_FILE_MAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct vdk_file_map {
    pthread_mutex_t lock;    /* guards setting up base/len */
    const uint8_t *base;     /* NULL: not mapped (yet) */
    uint64_t len;
    int slot;                /* index in the fault handler's table, -1 none */
    bool impossible;         /* mmap failed once: do not try again */
    atomic_bool ready;       /* base and len are set (read without lock) */
    atomic_bool damaged;     /* a page vanished under the mapping */
};

void vdk_file_map_init(struct vdk_file_map *m);

/*
 * Point *ptr at [off, off+bytes) of the file behind fd, mapping it on
 * first use.  -ENOTSUP when the file cannot be mapped or the range lies
 * past the mapped length, -EFAULT when the range is gone (the file is
 * shorter now) or the mapping was damaged.  The pages fault in as the
 * caller touches them (the kernel maps a batch around each fault); a
 * file that shrinks after the check makes a kernel copy from the range
 * fail with EFAULT, and a user-space access read zeros (see above).
 */
int vdk_file_map_get(struct vdk_file_map *m, int fd, uint64_t off, uint64_t bytes,
                     const void **ptr);

/* Done with the bytes: 0, or -EFAULT if the mapping was damaged since
   (whatever was done with them must be redone from ordinary reads). */
int vdk_file_map_put(struct vdk_file_map *m, const void *ptr, uint64_t bytes);

/* Unmap (node close).  No pointer from the mapping may be used after. */
void vdk_file_map_release(struct vdk_file_map *m);

#endif /* VDK_PROTOCOLS_FILE_MAP_H */
