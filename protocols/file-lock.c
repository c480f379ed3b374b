/* SPDX-License-Identifier: MIT */
/* QEMU-compatible image locks; see file-lock.h. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "protocols/file-lock.h"

#define LOCK_HOLD_BASE 100
#define LOCK_DENY_BASE 200

enum { PERM_READ = 0, PERM_WRITE = 1, PERM_WRITE_UNCHANGED = 2, PERM_RESIZE = 3,
       PERM_GRAPH_MOD = 4, N_PERMS = 5 };

static const char *const perm_names[N_PERMS] = {
    "consistent read", "write", "write unchanged", "resize", "change children",
};

static int lock_byte(int fd, off_t byte, short type)
{
    struct flock fl = {
        .l_type = type, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1,
    };
    return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* True if another open file description holds a lock on `byte`. */
static int byte_taken(int fd, off_t byte)
{
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return -errno;
    return fl.l_type != F_UNLCK;
}

static void unlock_all(int fd)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
    fcntl(fd, F_OFD_SETLK, &fl);
}

int vdk_file_lock(int fd, enum vdk_lock_mode mode, const char *filename,
                  struct vdk_error **errp)
{
    unsigned hold = 0, deny = 0;
    switch (mode) {
    case VDK_LOCK_NONE:
        return 0;
    case VDK_LOCK_READ:
        hold = 1u << PERM_READ;
        deny = (1u << PERM_WRITE) | (1u << PERM_RESIZE);
        break;
    case VDK_LOCK_WRITE:
        hold = (1u << PERM_READ) | (1u << PERM_WRITE) | (1u << PERM_RESIZE);
        deny = (1u << PERM_WRITE) | (1u << PERM_RESIZE);
        break;
    }
    /* Take our shared locks first so a racing opener sees them. */
    for (int i = 0; i < N_PERMS; i++) {
        int r = 0;
        if (hold & (1u << i))
            r = lock_byte(fd, LOCK_HOLD_BASE + i, F_RDLCK);
        if (r == 0 && (deny & (1u << i)))
            r = lock_byte(fd, LOCK_DENY_BASE + i, F_RDLCK);
        if (r == -EINVAL || r == -ENOLCK || r == -EOPNOTSUPP)
            return 0; /* filesystem without OFD locks: run unlocked */
        if (r < 0)
            return vdk_error_setf_errno(errp, r, "cannot lock '%s'", filename);
    }
    for (int i = 0; i < N_PERMS; i++) {
        bool want = hold & (1u << i);
        bool denied = deny & (1u << i);
        /* Someone denies what we hold, or holds what we deny. */
        bool blocked = want && byte_taken(fd, LOCK_DENY_BASE + i) > 0;
        if (blocked || (denied && byte_taken(fd, LOCK_HOLD_BASE + i) > 0)) {
            unlock_all(fd);
            /* qemu's words, which scripts match (on two lines, as qemu). */
            return vdk_error_setf(errp, EBUSY,
                                  "Failed to get %s\"%s\" lock\n"
                                  "Is another process using the image [%s]?",
                                  blocked ? "" : "shared ", perm_names[i], filename);
        }
    }
    return 0;
}
