/* SPDX-License-Identifier: MIT */
/* libnbd loaded on demand: see nbd-lib.h. */
#define VDK_LIBNBD_NO_REDIRECT
#include "protocols/nbd-lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

struct vdk_libnbd vdk_libnbd;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];     /* empty: loaded */

static void load(void)
{
    /* RTLD_LOCAL: libnbd's dependencies stay out of the global namespace. */
    void *h = dlopen("libnbd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof(load_error),
                 "cannot load libnbd (install libnbd0): %s", dlerror());
        return;
    }
#define VDK_LIBNBD_RESOLVE(f)                                                  \
    if (!(*(void **)&vdk_libnbd.f = dlsym(h, #f))) {                           \
        snprintf(load_error, sizeof(load_error),                               \
                 "libnbd.so.0 lacks %s (libnbd too old)", #f);                 \
        return;                                                                \
    }
    VDK_LIBNBD_FUNCS(VDK_LIBNBD_RESOLVE)
#undef VDK_LIBNBD_RESOLVE
    /* Never dlclose()d: handles may live until exit. */
}

int vdk_libnbd_load(struct vdk_error **errp)
{
    pthread_once(&load_once, load);
    if (load_error[0])
        return vdk_error_setf(errp, ENOENT, "%s", load_error);
    return 0;
}
