/* SPDX-License-Identifier: MIT */
/* librbd and librados loaded on demand: see rbd-lib.h. */
#define VDK_LIBRBD_NO_REDIRECT
#include "protocols/rbd-lib.h"

struct vdk_librados vdk_librados;
struct vdk_librbd vdk_librbd;

#define VDK_LIBRADOS_SYM(f) VDK_DYNLIB_SYM(struct vdk_librados, f)
#define VDK_LIBRBD_SYM(f) VDK_DYNLIB_SYM(struct vdk_librbd, f)
static const struct vdk_dynlib_sym rados_syms[] = { VDK_LIBRADOS_FUNCS(VDK_LIBRADOS_SYM) };
static const struct vdk_dynlib_sym rbd_syms[] = { VDK_LIBRBD_FUNCS(VDK_LIBRBD_SYM) };
static struct vdk_dynlib rados_lib =
    VDK_DYNLIB_INIT("librados.so.2", "librados2", rados_syms, &vdk_librados);
static struct vdk_dynlib rbd_lib =
    VDK_DYNLIB_INIT("librbd.so.1", "librbd1", rbd_syms, &vdk_librbd);

int vdk_librbd_load(struct vdk_error **errp)
{
    /* librbd first: without it (the usual case) the message names librbd,
       though librados is what it needs. */
    int r = vdk_dynlib_load(&rbd_lib, errp);
    return r < 0 ? r : vdk_dynlib_load(&rados_lib, errp);
}
