/* SPDX-License-Identifier: MIT */
/*
 * The "file" protocol: regular files and block devices through
 * pread/pwrite, fallocate for zeroes and holes, SEEK_DATA/SEEK_HOLE for
 * block status, fdatasync, ftruncate, optional O_DIRECT, and QEMU-compatible
 * image locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/driver.h"
#include "protocols/file-lock.h"
#include "protocols/file-map.h"

struct file_state {
    int fd;
    enum vdk_lock_mode lock; /* the image lock this descriptor holds */
    struct vdk_file_map map; /* zero-copy reads (file-map.h) */
    bool is_bdev;
    bool direct;
    bool has_seek_data; /* cleared when the fs does not support it */
    bool no_punch, no_zero_range;
    bool no_locking;    /* locking=off */
    bool map_reads;     /* map=on: zero-copy reads allowed (file_map) */
    /* Changes made through this descriptor, and the count the last
       successful fdatasync covered: a flush with nothing new to cover (a
       guest's last flush, then the close) costs no system call. */
    atomic_uint_fast64_t write_gen, flushed_gen;
};

static const char *const locking_values[] = { "auto", "on", "off", NULL };

static const struct vdk_opt_desc file_open_opts[] = {
    { "filename", VDK_OPT_STRING, "File name of the image", NULL, NULL },
    { "locking", VDK_OPT_ENUM, "Image locking", "auto", locking_values },
    { "map", VDK_OPT_BOOL, "Zero-copy reads from a read-only mapping of the file", "off",
      NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static const struct vdk_opt_desc file_create_opts[] = {
    { "size", VDK_OPT_SIZE, "Virtual disk size", NULL, NULL },
    { "preallocation", VDK_OPT_ENUM, "Preallocation mode", NULL,
      (const char *const[]){ "off", "falloc", "full", NULL } },
    { "nocow", VDK_OPT_BOOL, "Turn off copy-on-write (valid only on btrfs)", NULL, NULL },
    { "extent_size_hint", VDK_OPT_SIZE,
      "Extent size hint for the image file, 0 to disable", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL },
};

static int64_t fd_length(struct file_state *s)
{
    if (s->is_bdev) {
        uint64_t sz = 0;
        if (ioctl(s->fd, BLKGETSIZE64, &sz) < 0)
            return -errno;
        return (int64_t)sz;
    }
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return -errno;
    return st.st_size;
}

static int file_open(struct vdk_node *n, struct vdk_opts *opts, unsigned flags,
                     struct vdk_error **errp)
{
    struct file_state *s = n->opaque;
    const char *fn = vdk_opts_get(opts, "filename");
    int lk = vdk_opts_get_enum(opts, "locking", locking_values, 0, errp);
    if (lk < 0)
        return lk;
    bool map_reads = false;
    int mr = vdk_opts_get_bool(opts, "map", (flags & VDK_O_MAP) != 0, &map_reads, errp);
    if (mr < 0)
        return mr;
    s->map_reads = map_reads;
    if (fn && strncmp(fn, "file://", 7) == 0)
        fn += 7;
    if (!fn || !*fn)
        return vdk_error_setf(errp, EINVAL, "no file name given");
    int oflags = O_CLOEXEC | ((flags & VDK_O_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & VDK_O_DIRECT)
        oflags |= O_DIRECT;
    s->fd = open(fn, oflags);
    if (s->fd < 0) {
        int e = errno;
        if (e == EINVAL && (flags & VDK_O_DIRECT))
            return vdk_error_setf(errp, e, "Could not open '%s': the filesystem does not "
                                  "support O_DIRECT (cache=none)", fn);
        return vdk_error_setf_errno(errp, e, "Could not open '%s'", fn);
    }
    struct stat st;
    if (fstat(s->fd, &st) < 0) {
        int e = errno;
        close(s->fd);
        return vdk_error_setf_errno(errp, e, "could not stat '%s'", fn);
    }
    if (S_ISBLK(st.st_mode)) {
        s->is_bdev = true;
    } else if (!S_ISREG(st.st_mode)) {
        close(s->fd);
        return vdk_error_setf(errp, EINVAL, "'%s' is not a regular file or block device", fn);
    }
    s->direct = flags & VDK_O_DIRECT;
    s->has_seek_data = !s->is_bdev;

    /* A read-only metadata open (VDK_O_NO_IO, "info") needs no
       permissions, as in QEMU, so it works on images others write to. */
    enum vdk_lock_mode mode = VDK_LOCK_NONE;
    bool no_io = (flags & VDK_O_NO_IO) && !(flags & VDK_O_RDWR);
    s->no_locking = (lk == 2);
    if (lk != 2 && !(flags & VDK_O_SHARE) && !no_io)
        mode = (flags & VDK_O_RDWR) ? VDK_LOCK_WRITE : VDK_LOCK_READ;
    int r = vdk_file_lock(s->fd, mode, fn, errp);
    if (r < 0) {
        close(s->fd);
        return r;
    }
    s->lock = mode;

    int64_t len = fd_length(s);
    if (len < 0) {
        close(s->fd);
        return vdk_error_setf_errno(errp, (int)len, "could not get the size of '%s'", fn);
    }
    n->size = (uint64_t)len;
    n->growable = !s->is_bdev;
    n->limits.request_alignment = 1;
    if (s->direct) {
        int ss = 0;
        if (s->is_bdev && ioctl(s->fd, BLKSSZGET, &ss) == 0 && ss > 0)
            n->limits.request_alignment = (uint32_t)ss;
        else
            n->limits.request_alignment = 4096;
    }
    n->limits.max_transfer = VDK_DEFAULT_MAX_TRANSFER;
    n->limits.opt_transfer = 1u << 20;
    n->supported_zero_flags = VDK_REQ_MAY_UNMAP;
    vdk_file_map_init(&s->map);
    return 0;
}

static enum vdk_lock_mode lock_mode(struct file_state *s, unsigned flags)
{
    if (s->no_locking || (flags & VDK_O_SHARE))
        return VDK_LOCK_NONE;
    return (flags & VDK_O_RDWR) ? VDK_LOCK_WRITE : VDK_LOCK_READ;
}

/*
 * Switch between read-only and read-write (commit writes into a backing
 * file).  A new descriptor takes the new locks; the old one's locks are
 * dropped first so they do not conflict with ours, and restored if the
 * new ones cannot be had.
 */
static int file_reopen(struct vdk_node *n, unsigned flags, struct vdk_error **errp)
{
    struct file_state *s = n->opaque;
    const char *fn = n->filename;
    if (fn && strncmp(fn, "file://", 7) == 0)
        fn += 7;
    int oflags = O_CLOEXEC | ((flags & VDK_O_RDWR) ? O_RDWR : O_RDONLY);
    if (s->direct)
        oflags |= O_DIRECT;
    int fd = open(fn, oflags);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "could not reopen '%s' %s", fn,
                                    (flags & VDK_O_RDWR) ? "read-write" : "read-only");
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
    (void)fcntl(s->fd, F_OFD_SETLK, &fl);
    int r = vdk_file_lock(fd, lock_mode(s, flags), fn, errp);
    if (r < 0) {
        (void)vdk_file_lock(s->fd, lock_mode(s, n->open_flags), fn, NULL);
        close(fd);
        return r;
    }
    close(s->fd);
    s->fd = fd;
    s->lock = lock_mode(s, flags);
    return 0;
}

static void file_close(struct vdk_node *n)
{
    struct file_state *s = n->opaque;
    vdk_file_map_release(&s->map);
    close(s->fd);
}

/*
 * Zero-copy reads: only where the file cannot change under the mapping
 * without someone breaking the image locks, that is while this node holds
 * the reader's lock (no writer, no resize), and not with O_DIRECT, which
 * asks to keep the page cache out.  And only when asked (map=on): on a
 * virtual machine whose hypervisor fills the guest's page tables itself
 * (shadow paging), every page first touched through a mapping costs an
 * exit, and reading through the mapping measured 2.7 times slower than
 * pread's copy into a buffer that stays hot (vdk-img convert of 1 GiB
 * raw: 0.53 s against 0.20 s; vdk-nbd sequential reads 0.65 times the
 * MB/s).  On hardware paging the mapping saves that copy.
 */
static int file_map(struct vdk_node *n, uint64_t offset, uint64_t bytes, const void **ptr)
{
    struct file_state *s = n->opaque;
    if (!s->map_reads || s->direct || s->is_bdev || s->lock != VDK_LOCK_READ)
        return -ENOTSUP;
    return vdk_file_map_get(&s->map, s->fd, offset, bytes, ptr);
}

static int file_unmap(struct vdk_node *n, const void *ptr, uint64_t bytes)
{
    struct file_state *s = n->opaque;
    return vdk_file_map_put(&s->map, ptr, bytes);
}

/*
 * sendfile(2) hands the socket references to page-cache pages (on unix
 * sockets and TCP alike), so a server's read reply costs no copy in this
 * process.  Not with O_DIRECT, whose data must not come through the page
 * cache.  No lock is needed, unlike file_map: a file that shrinks only
 * ends the send early, and the caller pads.
 */
static int file_sendfile(struct vdk_node *n, int sock, uint64_t offset, uint64_t bytes,
                         uint64_t *sent)
{
    struct file_state *s = n->opaque;
    if (s->direct)
        return -ENOTSUP;
    if (bytes == 0)
        return 0; /* only asked */
    while (*sent < bytes) {
        off_t at = (off_t)(offset + *sent);
        uint64_t want = bytes - *sent;
        ssize_t k = sendfile(sock, s->fd, &at, want > (1u << 30) ? (1u << 30) : want);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (k == 0)
            break; /* end of file */
        *sent += (uint64_t)k;
    }
    return 0;
}

/* O_DIRECT needs aligned memory as well; bounce when the caller's is not. */
static bool needs_bounce(struct file_state *s, const void *buf)
{
    return s->direct && ((uintptr_t)buf & 4095);
}

static int file_pread(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                      void *buf, unsigned flags)
{
    struct file_state *s = n->opaque;
    uint8_t *p = buf, *bounce = NULL;
    if (needs_bounce(s, buf)) {
        if (!(bounce = vdk_blk_alloc(bytes)))
            return -ENOMEM;
        p = bounce;
    }
    uint64_t done = 0;
    int r = 0;
    while (done < bytes) {
        ssize_t k = pread(s->fd, p + done, bytes - done, (off_t)(offset + done));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (k == 0) {
            memset(p + done, 0, bytes - done); /* past EOF reads zeros */
            break;
        }
        done += (uint64_t)k;
    }
    if (bounce) {
        if (r == 0)
            memcpy(buf, bounce, bytes);
        vdk_blk_free(bounce);
    }
    return r;
}

static int do_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                     const void *buf, unsigned flags)
{
    struct file_state *s = n->opaque;
    const uint8_t *p = buf;
    uint8_t *bounce = NULL;
    if (needs_bounce(s, buf)) {
        if (!(bounce = vdk_blk_alloc(bytes)))
            return -ENOMEM;
        memcpy(bounce, buf, bytes);
        p = bounce;
    }
    uint64_t done = 0;
    int r = 0;
    while (done < bytes) {
        ssize_t k = pwrite(s->fd, p + done, bytes - done, (off_t)(offset + done));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        if (k == 0) {
            r = -EIO;
            break;
        }
        done += (uint64_t)k;
    }
    vdk_blk_free(bounce);
    return r;
}

static int do_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                            unsigned flags)
{
    struct file_state *s = n->opaque;
    if (!s->is_bdev) {
        int64_t len = fd_length(s);
        if (len < 0)
            return (int)len;
        if (offset >= (uint64_t)len) {
            /* Beyond EOF already reads as zeros: just extend, with a call
               that never shrinks the file, since another thread may be
               writing past this range (qcow2 allocations run in parallel);
               ftruncate only where the filesystem has no ZERO_RANGE. */
            if (!s->no_zero_range) {
                if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)bytes) == 0)
                    return 0;
                if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
                    return -errno;
                s->no_zero_range = true;
            }
            return ftruncate(s->fd, (off_t)(offset + bytes)) < 0 ? -errno : 0;
        }
    }
    if ((flags & VDK_REQ_MAY_UNMAP) && !s->no_punch) {
        if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)offset, (off_t)bytes) == 0) {
            if (!s->is_bdev) {
                int64_t len = fd_length(s);
                if (len >= 0 && offset + bytes > (uint64_t)len &&
                    ftruncate(s->fd, (off_t)(offset + bytes)) < 0)
                    return -errno;
            }
            return 0;
        }
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
            return -errno;
        s->no_punch = true;
    }
    if (!s->no_zero_range) {
        if (fallocate(s->fd, FALLOC_FL_ZERO_RANGE, (off_t)offset, (off_t)bytes) == 0)
            return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
            return -errno;
        s->no_zero_range = true;
    }
    return -ENOTSUP;
}

static int do_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    struct file_state *s = n->opaque;
    if (s->no_punch)
        return 0;
    if (fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
                  (off_t)bytes) < 0) {
        if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
            s->no_punch = true;
            return 0;
        }
        return -errno;
    }
    return 0;
}

/*
 * Every change bumps write_gen once it is done (not before: a flush that
 * ran while it was under way does not cover it).  Failed calls count too,
 * since part of them may have landed.
 */
static int changed(struct vdk_node *n, int r)
{
    struct file_state *s = n->opaque;
    atomic_fetch_add(&s->write_gen, 1);
    return r;
}

static int file_pwrite(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                       const void *buf, unsigned flags)
{
    return changed(n, do_pwrite(n, offset, bytes, buf, flags));
}

static int file_pwrite_zeroes(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                              unsigned flags)
{
    return changed(n, do_pwrite_zeroes(n, offset, bytes, flags));
}

static int file_discard(struct vdk_node *n, uint64_t offset, uint64_t bytes)
{
    return changed(n, do_discard(n, offset, bytes));
}

/* fdatasync, unless every change made through this descriptor is covered
   by one that succeeded after the change was done. */
static int file_flush(struct vdk_node *n)
{
    struct file_state *s = n->opaque;
    uint_fast64_t gen = atomic_load(&s->write_gen);
    uint_fast64_t done = atomic_load(&s->flushed_gen);
    if (gen == done)
        return 0;
    if (fdatasync(s->fd) < 0)
        return -errno;
    while (done < gen && !atomic_compare_exchange_weak(&s->flushed_gen, &done, gen))
        ;
    return 0;
}

/*
 * SEEK_DATA/SEEK_HOLE: data from offset up to the next hole, or a hole up
 * to the next data.  Filesystems without support report all data.
 */
static int file_block_status(struct vdk_node *n, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, uint64_t *map, struct vdk_node **file)
{
    struct file_state *s = n->opaque;
    *map = offset;
    *file = n;
    *pnum = bytes;
    if (!s->has_seek_data)
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    off_t d = lseek(s->fd, (off_t)offset, SEEK_DATA);
    if (d < 0) {
        if (errno == ENXIO) /* no data after offset: hole to EOF */
            return VDK_BS_ZERO | VDK_BS_OFFSET_VALID;
        s->has_seek_data = false;
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    }
    if ((uint64_t)d > offset) {
        *pnum = vdk_min_u64(bytes, (uint64_t)d - offset);
        return VDK_BS_ZERO | VDK_BS_OFFSET_VALID;
    }
    off_t h = lseek(s->fd, (off_t)offset, SEEK_HOLE);
    if (h < 0 || (uint64_t)h <= offset) {
        /* Raced with a concurrent change; call it data. */
        return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
    }
    *pnum = vdk_min_u64(bytes, (uint64_t)h - offset);
    return VDK_BS_DATA | VDK_BS_OFFSET_VALID;
}

static int64_t file_get_length(struct vdk_node *n)
{
    return fd_length(n->opaque);
}

static int64_t file_get_allocated_size(struct vdk_node *n)
{
    struct file_state *s = n->opaque;
    struct stat st;
    if (fstat(s->fd, &st) < 0)
        return -errno;
    return (int64_t)st.st_blocks * 512;
}

/* Write real zeros over [from, to) (preallocation=full). */
static int write_zero_range(int fd, uint64_t from, uint64_t to)
{
    size_t chunk = 1u << 20;
    void *z = calloc(1, chunk);
    if (!z)
        return -ENOMEM;
    int r = 0;
    while (from < to) {
        size_t c = (size_t)vdk_min_u64(chunk, to - from);
        ssize_t k = pwrite(fd, z, c, (off_t)from);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            r = -errno;
            break;
        }
        from += (uint64_t)k;
    }
    free(z);
    return r;
}

/*
 * When an empty file grows, write zeros over its first block, as QEMU
 * does: later O_DIRECT opens can then probe the alignment on real data,
 * and "disk size" and "map" of a new image match qemu-img's.
 */
static int allocate_first_block(int fd, uint64_t old, uint64_t size, const char *fn,
                                struct vdk_error **errp)
{
    static const char zeros[4096];
    if (old != 0 || size == 0)
        return 0;
    size_t len = (size_t)vdk_min_u64(size, sizeof(zeros));
    ssize_t w;
    do {
        w = pwrite(fd, zeros, len, 0);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return vdk_error_setf_errno(errp, errno, "could not write the first block of '%s'",
                                    fn);
    return 0;
}

static int fd_resize(int fd, bool is_bdev, uint64_t old, uint64_t size,
                     enum vdk_prealloc prealloc, const char *fn,
                     struct vdk_error **errp)
{
    if (is_bdev) {
        if (size > old)
            return vdk_error_setf(errp, EINVAL, "cannot grow block device '%s' "
                                  "(%ju bytes) to %ju bytes", fn, (uintmax_t)old,
                                  (uintmax_t)size);
        return 0;
    }
    if (size <= old || prealloc == VDK_PREALLOC_OFF || prealloc == VDK_PREALLOC_METADATA) {
        if (ftruncate(fd, (off_t)size) < 0)
            return vdk_error_setf_errno(errp, errno, "could not resize '%s'", fn);
        return allocate_first_block(fd, old, size, fn, errp);
    }
    if (prealloc == VDK_PREALLOC_FALLOC) {
        int e = posix_fallocate(fd, (off_t)old, (off_t)(size - old));
        if (e)
            return vdk_error_setf_errno(errp, e, "could not preallocate '%s'", fn);
        return allocate_first_block(fd, old, size, fn, errp);
    }
    int r = write_zero_range(fd, old, size);
    if (r < 0)
        return vdk_error_setf_errno(errp, r, "could not preallocate '%s'", fn);
    return 0;
}

static int do_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                       bool allow_shrink, struct vdk_error **errp)
{
    struct file_state *s = n->opaque;
    int64_t old = fd_length(s);
    if (old < 0)
        return vdk_error_setf_errno(errp, (int)old, "could not get the size of '%s'",
                                    n->filename);
    int r = fd_resize(s->fd, s->is_bdev, (uint64_t)old, size, prealloc, n->filename, errp);
    if (r == 0)
        n->size = size;
    return r;
}

static int file_truncate(struct vdk_node *n, uint64_t size, enum vdk_prealloc prealloc,
                         bool allow_shrink, struct vdk_error **errp)
{
    return changed(n, do_truncate(n, size, prealloc, allow_shrink, errp));
}

static void set_nocow_and_hint(int fd, bool nocow, uint64_t hint)
{
    /* Both are best effort, as in QEMU: filesystems that lack them ignore them. */
    if (nocow) {
        int attr = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0) {
            attr |= FS_NOCOW_FL;
            (void)ioctl(fd, FS_IOC_SETFLAGS, &attr);
        }
    }
    if (hint && hint <= UINT32_MAX) {
        struct fsxattr attr;
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) == 0) {
            attr.fsx_xflags |= FS_XFLAG_EXTSIZE;
            attr.fsx_extsize = (uint32_t)hint;
            (void)ioctl(fd, FS_IOC_FSSETXATTR, &attr);
        }
    }
}

static int file_create(const char *filename, struct vdk_node *unused,
                       struct vdk_opts *opts, struct vdk_error **errp)
{
    uint64_t size = 0, hint = 0;
    bool nocow = false;
    int r = vdk_opts_get_size(opts, "size", 0, &size, errp);
    if (r < 0)
        return r;
    int pa = vdk_opts_get_enum(opts, "preallocation", vdk_prealloc_names,
                               VDK_PREALLOC_OFF, errp);
    if (pa < 0)
        return pa;
    if (pa == VDK_PREALLOC_METADATA)
        return vdk_error_setf(errp, EINVAL, "preallocation mode 'metadata' is not "
                              "supported for files (use off, falloc or full)");
    if ((r = vdk_opts_get_bool(opts, "nocow", false, &nocow, errp)) < 0 ||
        (r = vdk_opts_get_size(opts, "extent_size_hint", 1u << 20, &hint, errp)) < 0)
        return r;
    /* Open without O_TRUNC and lock first: never clobber an image in use. */
    int fd = open(filename, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return vdk_error_setf_errno(errp, errno, "could not create '%s'", filename);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        r = vdk_error_setf_errno(errp, errno, "could not stat '%s'", filename);
        goto out;
    }
    bool is_bdev = S_ISBLK(st.st_mode);
    if (!is_bdev && !S_ISREG(st.st_mode)) {
        r = vdk_error_setf(errp, EINVAL, "'%s' is not a regular file or block device",
                           filename);
        goto out;
    }
    r = vdk_file_lock(fd, VDK_LOCK_WRITE, filename, errp);
    if (r < 0)
        goto out;
    if (is_bdev) {
        uint64_t bsz = 0;
        if (ioctl(fd, BLKGETSIZE64, &bsz) < 0) {
            r = vdk_error_setf_errno(errp, errno, "could not get the size of '%s'", filename);
            goto out;
        }
        r = fd_resize(fd, true, bsz, size, (enum vdk_prealloc)pa, filename, errp);
        goto out;
    }
    if (ftruncate(fd, 0) < 0) {
        r = vdk_error_setf_errno(errp, errno, "could not truncate '%s'", filename);
        goto out;
    }
    set_nocow_and_hint(fd, nocow, hint);
    r = fd_resize(fd, false, 0, size, (enum vdk_prealloc)pa, filename, errp);
out:
    close(fd);
    return r;
}

const struct vdk_driver vdk_driver_file = {
    .name = "file",
    .kind = VDK_DRV_PROTOCOL,
    .state_size = sizeof(struct file_state),
    .protocols = (const char *const[]){ "file", NULL },
    .open_opts = file_open_opts,
    .create_opts = file_create_opts,
    .open = file_open,
    .close = file_close,
    .create = file_create,
    .pread = file_pread,
    .pwrite = file_pwrite,
    .pwrite_zeroes = file_pwrite_zeroes,
    .discard = file_discard,
    .flush = file_flush,
    .block_status = file_block_status,
    .get_length = file_get_length,
    .get_allocated_size = file_get_allocated_size,
    .truncate = file_truncate,
    .reopen = file_reopen,
    .map = file_map,
    .unmap = file_unmap,
    .sendfile = file_sendfile,
};
