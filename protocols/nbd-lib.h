/* SPDX-License-Identifier: MIT */
/*
 * libnbd, loaded when the first nbd node opens rather than when a program
 * starts.  libnbd pulls in GnuTLS, libxml2 and ICU (about twenty shared
 * libraries): linking it made every vdk-boot and vdk-img start pay for
 * loading and relocating them, though few runs use an NBD URI.
 *
 * Include after <libnbd.h>: each libnbd function the nbd driver calls
 * becomes a call through the pointer table, with libnbd's own prototype
 * (so the compiler still checks every call).  vdk_libnbd_load() must have
 * succeeded before any of them is called.  A libnbd function called
 * without being listed here fails to link (libvdk does not link libnbd):
 * add it to both lists.
 */
#ifndef VDK_PROTOCOLS_NBD_LIB_H
#define VDK_PROTOCOLS_NBD_LIB_H

#include <libnbd.h>

#include "vdk/error.h"

/* The libnbd functions used, X(name) each. */
#define VDK_LIBNBD_FUNCS(X) \
    X(nbd_add_meta_context) X(nbd_aio_connect_uri) X(nbd_aio_is_connecting) \
    X(nbd_aio_is_ready) X(nbd_block_status) X(nbd_can_fast_zero) \
    X(nbd_can_flush) X(nbd_can_fua) X(nbd_can_meta_context) \
    X(nbd_can_multi_conn) X(nbd_can_trim) X(nbd_can_zero) X(nbd_close) \
    X(nbd_create) X(nbd_flush) X(nbd_get_block_size) X(nbd_get_errno) \
    X(nbd_get_error) X(nbd_get_size) X(nbd_is_read_only) X(nbd_poll) \
    X(nbd_pread) X(nbd_pwrite) X(nbd_set_uri_allow_local_file) \
    X(nbd_shutdown) X(nbd_trim) X(nbd_zero)

struct vdk_libnbd {
#define VDK_LIBNBD_MEMBER(f) __typeof__(f) *f;
    VDK_LIBNBD_FUNCS(VDK_LIBNBD_MEMBER)
#undef VDK_LIBNBD_MEMBER
};

extern struct vdk_libnbd vdk_libnbd;

/* Load libnbd.so.0 and resolve every function, once per process (thread
   safe).  0, or -ENOENT with a message saying which library or symbol is
   missing. */
int vdk_libnbd_load(struct vdk_error **errp);

#ifndef VDK_LIBNBD_NO_REDIRECT
#define nbd_add_meta_context (vdk_libnbd.nbd_add_meta_context)
#define nbd_aio_connect_uri (vdk_libnbd.nbd_aio_connect_uri)
#define nbd_aio_is_connecting (vdk_libnbd.nbd_aio_is_connecting)
#define nbd_aio_is_ready (vdk_libnbd.nbd_aio_is_ready)
#define nbd_block_status (vdk_libnbd.nbd_block_status)
#define nbd_can_fast_zero (vdk_libnbd.nbd_can_fast_zero)
#define nbd_can_flush (vdk_libnbd.nbd_can_flush)
#define nbd_can_fua (vdk_libnbd.nbd_can_fua)
#define nbd_can_meta_context (vdk_libnbd.nbd_can_meta_context)
#define nbd_can_multi_conn (vdk_libnbd.nbd_can_multi_conn)
#define nbd_can_trim (vdk_libnbd.nbd_can_trim)
#define nbd_can_zero (vdk_libnbd.nbd_can_zero)
#define nbd_close (vdk_libnbd.nbd_close)
#define nbd_create (vdk_libnbd.nbd_create)
#define nbd_flush (vdk_libnbd.nbd_flush)
#define nbd_get_block_size (vdk_libnbd.nbd_get_block_size)
#define nbd_get_errno (vdk_libnbd.nbd_get_errno)
#define nbd_get_error (vdk_libnbd.nbd_get_error)
#define nbd_get_size (vdk_libnbd.nbd_get_size)
#define nbd_is_read_only (vdk_libnbd.nbd_is_read_only)
#define nbd_poll (vdk_libnbd.nbd_poll)
#define nbd_pread (vdk_libnbd.nbd_pread)
#define nbd_pwrite (vdk_libnbd.nbd_pwrite)
#define nbd_set_uri_allow_local_file (vdk_libnbd.nbd_set_uri_allow_local_file)
#define nbd_shutdown (vdk_libnbd.nbd_shutdown)
#define nbd_trim (vdk_libnbd.nbd_trim)
#define nbd_zero (vdk_libnbd.nbd_zero)
#endif

#endif
