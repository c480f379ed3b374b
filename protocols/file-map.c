/* SPDX-License-Identifier: MIT */
/*
 * Read-only file mappings for zero-copy reads, and the SIGBUS handler
 * that keeps a truncated file from killing the process (file-map.h).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocols/file-map.h"

/* Mappings the handler knows about; more at once are simply not made. */
#define MAP_SLOTS 64

static _Atomic(struct vdk_file_map *) slots[MAP_SLOTS];
static struct sigaction old_bus;
static uintptr_t page_size;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static bool installed;

/*
 * A fault inside one of our mappings: the file shrank under it.  Put an
 * anonymous page of zeros over the faulting page, so the access that
 * faulted repeats and reads zeros, and mark the mapping damaged.  (mmap
 * is a plain system call on Linux, safe to make here.)  Any other
 * SIGBUS goes to the handler that was there before, or kills the
 * process as it would have.
 */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAP_SLOTS; i++) {
        struct vdk_file_map *m = atomic_load(&slots[i]);
        if (!m || a < (uintptr_t)m->base || a - (uintptr_t)m->base >= m->len)
            continue;
        int saved = errno;
        void *p = mmap((void *)(a & ~(page_size - 1)), page_size, PROT_READ,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        errno = saved;
        if (p != MAP_FAILED) {
            atomic_store(&m->damaged, true);
            return;
        }
        break;
    }
    if ((old_bus.sa_flags & SA_SIGINFO) && old_bus.sa_sigaction) {
        old_bus.sa_sigaction(sig, si, uc);
    } else if (old_bus.sa_handler != SIG_DFL && old_bus.sa_handler != SIG_IGN) {
        old_bus.sa_handler(sig);
    } else {
        signal(SIGBUS, SIG_DFL);
        raise(SIGBUS);
    }
}

static void install(void)
{
    page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO | SA_NODEFER };
    sigemptyset(&sa.sa_mask);
    installed = sigaction(SIGBUS, &sa, &old_bus) == 0;
}

void vdk_file_map_init(struct vdk_file_map *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->slot = -1;
}

/* Map the whole file once.  Called with m->lock held. */
static int map_file(struct vdk_file_map *m, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > SIZE_MAX)
        return -ENOTSUP;
    pthread_once(&install_once, install);
    if (!installed)
        return -ENOTSUP;
    int slot = -1;
    for (int i = 0; i < MAP_SLOTS && slot < 0; i++) {
        struct vdk_file_map *none = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &none, m))
            slot = i;
    }
    if (slot < 0)
        return -ENOTSUP;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        atomic_store(&slots[slot], NULL);
        return -ENOTSUP;
    }
    madvise(p, (size_t)st.st_size, MADV_SEQUENTIAL);
    m->len = (uint64_t)st.st_size;
    m->slot = slot;
    /* base last: the handler matches on base and len */
    atomic_thread_fence(memory_order_release);
    m->base = p;
    atomic_store_explicit(&m->ready, true, memory_order_release);
    return 0;
}

int vdk_file_map_get(struct vdk_file_map *m, int fd, uint64_t off, uint64_t bytes,
                     const void **ptr)
{
    if (atomic_load(&m->damaged))
        return -EFAULT;
    /* Once mapped, no lock: every worker of every connection comes here. */
    if (!atomic_load_explicit(&m->ready, memory_order_acquire)) {
        pthread_mutex_lock(&m->lock);
        if (!m->base && !m->impossible && map_file(m, fd) < 0)
            m->impossible = true;
        pthread_mutex_unlock(&m->lock);
        if (!atomic_load_explicit(&m->ready, memory_order_acquire))
            return -ENOTSUP;
    }
    if (off > m->len || bytes > m->len - off)
        return -ENOTSUP;
    /* The range must still be inside the file: one fstat is far cheaper
       than faulting the pages in ahead (MADV_POPULATE_READ walks every
       page a second time). */
    struct stat st;
    if (bytes && (fstat(fd, &st) < 0 || (uint64_t)st.st_size < off + bytes))
        return -EFAULT;
    *ptr = m->base + off;
    return 0;
}

int vdk_file_map_put(struct vdk_file_map *m, const void *ptr, uint64_t bytes)
{
    return atomic_load(&m->damaged) ? -EFAULT : 0;
}

void vdk_file_map_release(struct vdk_file_map *m)
{
    if (m->base) {
        atomic_store(&slots[m->slot], NULL);
        munmap((void *)m->base, (size_t)m->len);
    }
    pthread_mutex_destroy(&m->lock);
    m->base = NULL;
    atomic_store(&m->ready, false);
}
