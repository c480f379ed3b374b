/* SPDX-License-Identifier: MIT */
/* libnbd loaded on demand: see nbd-lib.h. */
#define VDK_LIBNBD_NO_REDIRECT
#include "protocols/nbd-lib.h"

#include "block/dynlib.h"

struct vdk_libnbd vdk_libnbd;

#define VDK_LIBNBD_SYM(f) VDK_DYNLIB_SYM(struct vdk_libnbd, f)
static const struct vdk_dynlib_sym syms[] = { VDK_LIBNBD_FUNCS(VDK_LIBNBD_SYM) };
static struct vdk_dynlib lib = VDK_DYNLIB_INIT("libnbd.so.0", "libnbd0", syms, &vdk_libnbd);

int vdk_libnbd_load(struct vdk_error **errp)
{
    return vdk_dynlib_load(&lib, errp);
}
