/* SPDX-License-Identifier: MIT */
/*
 * The reader's ties to vdk-boot: an img_disk over a libvdk node (so every
 * format and chain libvdk opens works: qcow2 with backing, VHD, LUKS), and
 * the files --kernel-from-image=extract:DIR writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guest-boot/image/image.h"
#include "vdk/block.h"

static int node_read(void *opaque, void *buf, size_t len, uint64_t off)
{
    return vdk_pread(opaque, buf, len, off, 0);
}

int img_disk_from_node(struct img_disk *d, struct vdk_node *n,
                       struct vdk_error **errp)
{
    int64_t len = vdk_get_length(n);
    if (len < 0)
        return vdk_error_setf(errp, (int)-len, "cannot get the disk size");
    d->read = node_read;
    d->opaque = n;
    d->size = (uint64_t)len;
    return 0;
}

static int write_file(const char *dir, const char *name, const void *buf,
                      size_t len, struct vdk_error **errp)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return vdk_error_setf(errp, ENAMETOOLONG, "'%s': path too long", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "cannot create '%s'", path);
    const uint8_t *p = buf;
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : EIO;
            close(fd);
            return vdk_error_setf_errno(errp, e, "cannot write '%s'", path);
        }
        p += k;
        len -= (size_t)k;
    }
    if (close(fd) < 0)
        return vdk_error_setf_errno(errp, errno, "cannot write '%s'", path);
    return 0;
}

int img_extract(const struct img_loaded *l, const char *dir,
                struct vdk_error **errp)
{
    int r = write_file(dir, "vmlinuz", l->kernel, l->kernel_len, errp);
    if (r == 0 && l->initrd)
        r = write_file(dir, "initrd", l->initrd, l->initrd_len, errp);
    if (r == 0)
        r = write_file(dir, "cmdline", l->cmdline, strlen(l->cmdline), errp);
    return r;
}
