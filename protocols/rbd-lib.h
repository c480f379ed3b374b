/* SPDX-License-Identifier: MIT */
/*
 * librbd and librados, loaded when the first rbd node opens rather than
 * when a program starts.  They pull in libceph-common and boost (about
 * thirty shared libraries, some 20 ms of every vdk-img, vdk-nbd and
 * vdk-boot start), though few runs use an rbd: name.
 *
 * Include after <rados/librados.h> and <rbd/librbd.h>: each function the
 * rbd driver calls becomes a call through a pointer table with the
 * library's own prototype (so the compiler still checks every call).
 * vdk_librbd_load() must have succeeded before any of them is called.  A
 * librbd or librados function called without being listed here fails to
 * link (libvdk links neither): add it to its X list and to the #defines.
 */
#ifndef VDK_PROTOCOLS_RBD_LIB_H
#define VDK_PROTOCOLS_RBD_LIB_H

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "block/dynlib.h"
#include "vdk/error.h"

/* The functions used, X(name) each. */
#define VDK_LIBRADOS_FUNCS(X) \
    X(rados_conf_get) X(rados_conf_read_file) X(rados_conf_set) \
    X(rados_connect) X(rados_create) X(rados_ioctx_create) \
    X(rados_ioctx_destroy) X(rados_ioctx_set_namespace) X(rados_shutdown)

#define VDK_LIBRBD_FUNCS(X) \
    X(rbd_aio_create_completion) X(rbd_aio_discard) X(rbd_aio_flush) \
    X(rbd_aio_get_return_value) X(rbd_aio_read) X(rbd_aio_release) \
    X(rbd_aio_wait_for_complete) X(rbd_aio_write) X(rbd_aio_write_zeroes) \
    X(rbd_close) X(rbd_create4) X(rbd_diff_iterate2) X(rbd_get_features) \
    X(rbd_get_flags) X(rbd_get_size) X(rbd_image_options_create) \
    X(rbd_image_options_destroy) X(rbd_image_options_set_uint64) \
    X(rbd_lock_acquire) X(rbd_lock_get_owners) X(rbd_lock_get_owners_cleanup) \
    X(rbd_lock_release) X(rbd_open) X(rbd_open_read_only) X(rbd_resize) \
    X(rbd_snap_create) X(rbd_snap_get_timestamp) X(rbd_snap_list) \
    X(rbd_snap_list_end) X(rbd_snap_remove) X(rbd_snap_rollback) X(rbd_stat)

struct vdk_librados {
    VDK_LIBRADOS_FUNCS(VDK_DYNLIB_MEMBER)
};

struct vdk_librbd {
    VDK_LIBRBD_FUNCS(VDK_DYNLIB_MEMBER)
};

extern struct vdk_librados vdk_librados;
extern struct vdk_librbd vdk_librbd;

/* Load librbd.so.1 and librados.so.2 and resolve every function, once per
   process (thread safe; block/dynlib.c).  0, or -ENOENT with a one-line
   message saying which library is not installed or which symbol is
   missing. */
int vdk_librbd_load(struct vdk_error **errp);

#ifndef VDK_LIBRBD_NO_REDIRECT
#define rados_conf_get (vdk_librados.rados_conf_get)
#define rados_conf_read_file (vdk_librados.rados_conf_read_file)
#define rados_conf_set (vdk_librados.rados_conf_set)
#define rados_connect (vdk_librados.rados_connect)
#define rados_create (vdk_librados.rados_create)
#define rados_ioctx_create (vdk_librados.rados_ioctx_create)
#define rados_ioctx_destroy (vdk_librados.rados_ioctx_destroy)
#define rados_ioctx_set_namespace (vdk_librados.rados_ioctx_set_namespace)
#define rados_shutdown (vdk_librados.rados_shutdown)
#define rbd_aio_create_completion (vdk_librbd.rbd_aio_create_completion)
#define rbd_aio_discard (vdk_librbd.rbd_aio_discard)
#define rbd_aio_flush (vdk_librbd.rbd_aio_flush)
#define rbd_aio_get_return_value (vdk_librbd.rbd_aio_get_return_value)
#define rbd_aio_read (vdk_librbd.rbd_aio_read)
#define rbd_aio_release (vdk_librbd.rbd_aio_release)
#define rbd_aio_wait_for_complete (vdk_librbd.rbd_aio_wait_for_complete)
#define rbd_aio_write (vdk_librbd.rbd_aio_write)
#define rbd_aio_write_zeroes (vdk_librbd.rbd_aio_write_zeroes)
#define rbd_close (vdk_librbd.rbd_close)
#define rbd_create4 (vdk_librbd.rbd_create4)
#define rbd_diff_iterate2 (vdk_librbd.rbd_diff_iterate2)
#define rbd_get_features (vdk_librbd.rbd_get_features)
#define rbd_get_flags (vdk_librbd.rbd_get_flags)
#define rbd_get_size (vdk_librbd.rbd_get_size)
#define rbd_image_options_create (vdk_librbd.rbd_image_options_create)
#define rbd_image_options_destroy (vdk_librbd.rbd_image_options_destroy)
#define rbd_image_options_set_uint64 (vdk_librbd.rbd_image_options_set_uint64)
#define rbd_lock_acquire (vdk_librbd.rbd_lock_acquire)
#define rbd_lock_get_owners (vdk_librbd.rbd_lock_get_owners)
#define rbd_lock_get_owners_cleanup (vdk_librbd.rbd_lock_get_owners_cleanup)
#define rbd_lock_release (vdk_librbd.rbd_lock_release)
#define rbd_open (vdk_librbd.rbd_open)
#define rbd_open_read_only (vdk_librbd.rbd_open_read_only)
#define rbd_resize (vdk_librbd.rbd_resize)
#define rbd_snap_create (vdk_librbd.rbd_snap_create)
#define rbd_snap_get_timestamp (vdk_librbd.rbd_snap_get_timestamp)
#define rbd_snap_list (vdk_librbd.rbd_snap_list)
#define rbd_snap_list_end (vdk_librbd.rbd_snap_list_end)
#define rbd_snap_remove (vdk_librbd.rbd_snap_remove)
#define rbd_snap_rollback (vdk_librbd.rbd_snap_rollback)
#define rbd_stat (vdk_librbd.rbd_stat)
#endif

#endif
