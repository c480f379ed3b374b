/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy reading for convert: the file under a raw source is mapped
 * read-only, and data ranges whose block status gives their offset in
 * that file are zero-checked and written straight from the mapping.  This
 * saves the copy from the page cache into a buffer, about a quarter of
 * the CPU time of a raw copy (the other big costs, the copy into the
 * target's page cache and the filesystem's allocation, stay).
 *
 * Only where it is safe:
 *  - the source is raw, qcow2, vpc, vhdx, vdi or parallels directly on the
 *    file protocol, whose
 *    block status gives a file offset only where the file holds the guest
 *    bytes as they are (no encryption, no compression: qcow2 reports no
 *    offset for those, and LUKS, whose offsets point at ciphertext, is
 *    not on the list); ranges of other files (a backing file, an external
 *    data file) are read;
 *  - the source is locked against writers and resizes (not -U), so the
 *    file cannot shrink under the mapping (which would raise SIGBUS), and
 *    not opened with -T none (which asks to bypass the page cache);
 *  - the file opened here is the one the node holds: same size and same
 *    allocated size as the node reports;
 *  - the target takes VDK_REQ_NO_TOUCH writes (raw or qcow2 on files,
 *    not encrypted) and -c is off, so no library code touches the mapped
 *    bytes in user space: the only user-space reads are the engine's zero
 *    scan, which convert.c guards against SIGBUS (a file truncated by a
 *    process ignoring the locks), and write() itself returns EFAULT
 *    rather than faulting.  A write that would have to copy the bytes
 *    (qcow2 copy-on-write) fails -ENOTSUP and the chunk is read instead.
 * Anything else, or any failure, falls back to ordinary reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Do not bother below this size: the mapping costs more than it saves. */
#define MAP_MIN_SIZE (1u << 20)

void cvt_map_open(struct cvt_map *m, const struct cvt_source *s)
{
    memset(m, 0, sizeof(*m));
    const char *drv = vdk_node_driver_name(s->node);
    static const char *const mappable[] = { "raw", "qcow2", "vpc", "vhdx", "vdi",
                                            "parallels", NULL };
    bool ok = false;
    for (int i = 0; mappable[i]; i++)
        ok |= strcmp(drv, mappable[i]) == 0;
    if (!s->may_map || !ok)
        return;
    struct vdk_node *file = vdk_node_file(s->node);
    if (!file || strcmp(vdk_node_driver_name(file), "file") != 0)
        return;
    const char *path = vdk_node_filename(file);
    if (!path)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    int64_t len = vdk_get_length(file);
    int64_t alloc = vdk_get_allocated_size(file);
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || len < MAP_MIN_SIZE ||
        st.st_size != len || (alloc >= 0 && st.st_blocks * 512 != alloc) ||
        (uint64_t)len > SIZE_MAX) {
        close(fd);
        return;
    }
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd); /* the mapping keeps the file */
    if (p == MAP_FAILED)
        return;
    madvise(p, (size_t)len, MADV_SEQUENTIAL);
    m->file = file;
    m->base = p;
    m->len = (uint64_t)len;
}

const uint8_t *cvt_map_get(const struct cvt_map *m, uint64_t off, uint64_t bytes)
{
    if (!m->base || off > m->len || bytes > m->len - off)
        return NULL;
    const uint8_t *p = m->base + off;
    /* Fault the pages in with one call rather than one fault per 64 KiB;
       older kernels without MADV_POPULATE_READ just fault as we go. */
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
    if (madvise((void *)a, (size_t)((uintptr_t)p + bytes - a), MADV_POPULATE_READ) < 0 &&
        errno != EINVAL)
        return NULL; /* unreadable or gone (file shrank): use reads */
    return p;
}

void cvt_map_close(struct cvt_map *m)
{
    if (m->base)
        munmap((void *)m->base, (size_t)m->len);
    memset(m, 0, sizeof(*m));
}

/*
 * The SIGBUS guard.  The handler is process-wide while any source is
 * mapped; a fault inside cvt_map_guard() jumps back to it, any other
 * SIGBUS keeps its default action.
 */
static _Thread_local sigjmp_buf *guard_jmp;
static struct sigaction old_bus;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    if (guard_jmp)
        siglongjmp(*guard_jmp, 1);
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
}

void cvt_map_guard_install(void)
{
    struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &old_bus);
}

void cvt_map_guard_remove(void)
{
    sigaction(SIGBUS, &old_bus, NULL);
}

int cvt_map_guard(int (*fn)(void *), void *opaque)
{
    sigjmp_buf jb;
    if (sigsetjmp(jb, 1) != 0) {
        guard_jmp = NULL;
        return -EFAULT;
    }
    guard_jmp = &jb;
    int r = fn(opaque);
    guard_jmp = NULL;
    return r;
}
