/* SPDX-License-Identifier: MIT */
/*
 * Image locking with open-file-description byte locks, in the same byte
 * layout QEMU uses, so that vdk and QEMU programs see each other's locks:
 * byte 100+i means "I hold permission i", byte 200+i means "I do not let
 * others have permission i" (i: 0 consistent read, 1 write,
 * 2 write-unchanged, 3 resize, 4 graph change).
 */
#ifndef VDK_BLOCK_FILE_LOCK_H
#define VDK_BLOCK_FILE_LOCK_H

#include <stdbool.h>

#include "vdk/error.h"

enum vdk_lock_mode {
    VDK_LOCK_NONE,   /* -U / locking=off: no locks */
    VDK_LOCK_READ,   /* reader: hold read, deny write and resize */
    VDK_LOCK_WRITE,  /* writer: hold read, write, resize; deny write, resize */
};

/*
 * Take the locks of `mode` on fd, after checking that no other open file
 * description holds a conflicting one.  Returns 0, -EBUSY with a message
 * naming the permission when the image is in use, or another -errno.
 */
int vdk_file_lock(int fd, enum vdk_lock_mode mode, const char *filename,
                  struct vdk_error **errp);

#endif
