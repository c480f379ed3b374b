/* SPDX-License-Identifier: MIT */
/*
 * The driver table.  Drivers are listed here explicitly (no constructor
 * registration) so that the set compiled in is visible in one place.
 * Protocols first, then formats, then filters; probing asks every format.
 */
#include <stdatomic.h>
#include <string.h>

#include "block/driver.h"

static const struct vdk_driver *const driver_table[] = {
    /* protocols */
    &vdk_driver_file,
    &vdk_driver_memory,
    &vdk_driver_null,
    &vdk_driver_nbd,
#ifdef VDK_HAVE_RBD
    &vdk_driver_rbd,
#endif
    /* formats */
    &vdk_driver_raw,
    &vdk_driver_qcow2,
    &vdk_driver_vpc,
    &vdk_driver_vmdk,
    &vdk_driver_ova,
    &vdk_driver_luks,
    &vdk_driver_vdi,
    &vdk_driver_parallels,
    &vdk_driver_vhdx,
    /* filters that options can name (driver=fault,file.driver=...) */
    &vdk_driver_fault,
};

#define N_DRIVERS (sizeof(driver_table) / sizeof(driver_table[0]))

/* One extra driver after the table, for unit tests (driver.h). */
static _Atomic(const struct vdk_driver *) test_driver;

void vdk_driver_set_test_extra(const struct vdk_driver *drv)
{
    atomic_store(&test_driver, drv);
}

const struct vdk_driver *vdk_driver_nth(size_t i)
{
    if (i < N_DRIVERS)
        return driver_table[i];
    return i == N_DRIVERS ? atomic_load(&test_driver) : NULL;
}

const struct vdk_driver *vdk_driver_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; vdk_driver_nth(i); i++)
        if (strcmp(vdk_driver_nth(i)->name, name) == 0)
            return vdk_driver_nth(i);
    return NULL;
}

/* A protocol entry ending in ':' ("rbd:") is a prefix, qemu's style for
   names that are not URIs; the others are URI schemes before "://". */
const struct vdk_driver *vdk_driver_for_uri(const char *filename)
{
    if (!filename)
        return NULL;
    const char *sep = strstr(filename, "://");
    size_t sl = sep ? (size_t)(sep - filename) : 0;
    for (size_t i = 0; i < N_DRIVERS; i++) {
        const char *const *p = driver_table[i]->protocols;
        for (; p && *p; p++) {
            size_t pl = strlen(*p);
            if (pl && (*p)[pl - 1] == ':') {
                if (strncmp(*p, filename, pl) == 0)
                    return driver_table[i];
            } else if (sep && pl == sl && strncmp(*p, filename, sl) == 0) {
                return driver_table[i];
            }
        }
    }
    return NULL;
}

const struct vdk_driver *vdk_protocol_driver(const char *filename)
{
    const struct vdk_driver *d = vdk_driver_for_uri(filename);
    if (d || vdk_filename_is_remote(filename))
        return d;
    return vdk_driver_default_protocol();
}

const struct vdk_driver *vdk_driver_default_protocol(void)
{
    return &vdk_driver_file;
}

bool vdk_filename_is_remote(const char *filename)
{
    return filename && (strstr(filename, "://") || strncmp(filename, "rbd:", 4) == 0 ||
                        vdk_driver_for_uri(filename));
}

const char *vdk_driver_name(const struct vdk_driver *drv)
{
    return drv ? drv->name : NULL;
}

bool vdk_driver_is_format(const struct vdk_driver *drv)
{
    return drv && drv->kind == VDK_DRV_FORMAT;
}

bool vdk_driver_can_create(const struct vdk_driver *drv)
{
    return drv && drv->create;
}

bool vdk_driver_can_amend(const struct vdk_driver *drv)
{
    return drv && drv->amend;
}

const struct vdk_opt_desc *vdk_driver_create_opts(const struct vdk_driver *drv)
{
    return drv ? drv->create_opts : NULL;
}

const struct vdk_opt_desc *vdk_driver_open_opts(const struct vdk_driver *drv)
{
    return drv ? drv->open_opts : NULL;
}
