/* SPDX-License-Identifier: MIT */
/* Shared libraries loaded on first use: see dynlib.h. */
#include "block/dynlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static void load(struct vdk_dynlib *lib)
{
    void *h = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(lib->error, sizeof(lib->error),
                 "%.*s is not installed (package %s): %s",
                 (int)strcspn(lib->soname, "."), lib->soname, lib->package,
                 dlerror());
        lib->state = -1;
        return;
    }
    for (size_t i = 0; i < lib->nsyms; i++) {
        void *sym = dlsym(h, lib->syms[i].name);
        if (!sym) {
            snprintf(lib->error, sizeof(lib->error),
                     "%s lacks %s (%s too old)", lib->soname,
                     lib->syms[i].name, lib->package);
            lib->state = -1;
            /* Leave nothing half-filled for a caller that ignores errors. */
            for (size_t j = 0; j < i; j++)
                memset((char *)lib->table + lib->syms[j].offset, 0, sizeof(sym));
            dlclose(h);
            return;
        }
        /* POSIX: a void * from dlsym() converts to a function pointer. */
        memcpy((char *)lib->table + lib->syms[i].offset, &sym, sizeof(sym));
    }
    lib->state = 1;
}

int vdk_dynlib_load(struct vdk_dynlib *lib, struct vdk_error **errp)
{
    pthread_mutex_lock(&lib->lock);
    if (lib->state == 0)
        load(lib);
    int state = lib->state;
    pthread_mutex_unlock(&lib->lock);
    if (state < 0)
        return vdk_error_setf(errp, ENOENT, "%s", lib->error);
    return 0;
}
