/* SPDX-License-Identifier: MIT */
/*
 * Shared libraries loaded on first use instead of at program start
 * (internal; not exported).  A driver whose library drags in many others
 * (libnbd: GnuTLS, libxml2, ICU; librbd: librados, libceph-common, boost)
 * would otherwise make every vdk-img, vdk-nbd and vdk-boot start load and
 * relocate them, though few runs use that driver.
 *
 * A user keeps type checking by listing its functions in an X-macro and
 * declaring a table of pointers with the library's own prototypes:
 *
 *   #define MY_FUNCS(X) X(foo_open) X(foo_close)
 *   struct my_lib { MY_FUNCS(VDK_DYNLIB_MEMBER) };
 *   #define MY_SYM(f) VDK_DYNLIB_SYM(struct my_lib, f)
 *   static const struct vdk_dynlib_sym syms[] = { MY_FUNCS(MY_SYM) };
 *   static struct vdk_dynlib lib = VDK_DYNLIB_INIT("libfoo.so.1", "libfoo1",
 *                                                  syms, &my_table);
 *
 * and #defining each name to its table slot for the callers (see
 * protocols/nbd-lib.h, protocols/rbd-lib.h).
 */
#ifndef VDK_BLOCK_DYNLIB_H
#define VDK_BLOCK_DYNLIB_H

#include <pthread.h>
#include <stddef.h>

#include "vdk/error.h"

/* A table member with the function's own prototype. */
#define VDK_DYNLIB_MEMBER(f) __typeof__(f) *f;
/* Where symbol f goes in a table of type T. */
#define VDK_DYNLIB_SYM(T, f) { #f, offsetof(T, f) },

struct vdk_dynlib_sym {
    const char *name;
    size_t offset;          /* of its pointer in the table */
};

struct vdk_dynlib {
    const char *soname;     /* "librbd.so.1" */
    const char *package;    /* the Debian package that ships it, for errors */
    const struct vdk_dynlib_sym *syms;
    size_t nsyms;
    void *table;            /* filled by vdk_dynlib_load() */
    /* private */
    pthread_mutex_t lock;
    int state;              /* 0 not tried, 1 loaded, -1 failed */
    char error[256];
};

#define VDK_DYNLIB_INIT(soname_, package_, syms_, table_)                      \
    { .soname = (soname_), .package = (package_), .syms = (syms_),             \
      .nsyms = sizeof(syms_) / sizeof((syms_)[0]), .table = (table_),          \
      .lock = PTHREAD_MUTEX_INITIALIZER }

/* dlopen() lib->soname (RTLD_LOCAL: its dependencies stay out of the
   global namespace) and resolve every symbol into lib->table, once per
   process; thread safe, and later calls return the first outcome.  The
   library is never unloaded.  0, or -ENOENT with a one-line message naming
   the library (and its package) or the missing symbol. */
int vdk_dynlib_load(struct vdk_dynlib *lib, struct vdk_error **errp);

#endif
