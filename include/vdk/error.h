/* SPDX-License-Identifier: MIT */
/*
 * vdk error reporting.
 *
 * Contract (libgit2/QEMU style, trimmed):
 *  - every fallible function returns 0 (or a non-negative value) on success
 *    and -errno on failure;
 *  - control-path functions (open, create, check, ...) additionally take
 *    `struct vdk_error **errp` as their last argument.  On failure they set
 *    *errp to a newly allocated error (if errp is not NULL); on success they
 *    leave it untouched.  *errp must be NULL on entry.
 *  - the I/O hot path (pread, pwrite, ...) returns -errno only.
 *  - messages are one phrase, lower case, without a trailing full stop;
 *    callers add context with vdk_error_prepend(), e.g.
 *    "opening backing file 'b.qcow2': L1 table at 0x... beyond end of file".
 *  - there is no thread-local "last error".
 */
#ifndef VDK_ERROR_H
#define VDK_ERROR_H

#include <stdarg.h>

#include "vdk/api.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vdk_error {
    int code;  /* positive errno value */
    char *msg; /* never NULL */
};

#if defined(__GNUC__)
#define VDK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VDK_PRINTF(a, b)
#endif

/*
 * Set *errp (if errp != NULL) to a new error with the formatted message.
 * `code` may be given as positive or negative errno; the return value is
 * always the negative errno, so callers can write
 *     return vdk_error_setf(errp, EINVAL, "bad size '%s'", s);
 * If *errp is already set the new message is dropped (first error wins).
 */
VDK_API int vdk_error_setf(struct vdk_error **errp, int code, const char *fmt, ...)
    VDK_PRINTF(3, 4);
VDK_API int vdk_error_vsetf(struct vdk_error **errp, int code, const char *fmt,
                    va_list ap) VDK_PRINTF(3, 0);

/* Like vdk_error_setf() but appends ": strerror(code)". */
VDK_API int vdk_error_setf_errno(struct vdk_error **errp, int code, const char *fmt, ...)
    VDK_PRINTF(3, 4);

/*
 * Prepend "context: " to the message of *errp.  No-op when errp or *errp is
 * NULL, so it can be called unconditionally on an error path.
 */
VDK_API void vdk_error_prepend(struct vdk_error **errp, const char *fmt, ...)
    VDK_PRINTF(2, 3);

/* Move src into *dst (if dst is NULL or *dst already set, src is freed). */
VDK_API void vdk_error_propagate(struct vdk_error **dst, struct vdk_error *src);

/* Returns "unknown error" for NULL. */
VDK_API const char *vdk_error_msg(const struct vdk_error *err);

VDK_API void vdk_error_free(struct vdk_error *err);

/* Print "prog: message" to stderr and free the error.  NULL is a no-op. */
VDK_API void vdk_error_report(const char *prog, struct vdk_error *err);

/*
 * Warnings the library must tell the user about (probed raw image, data=
 * secrets, ...).  Default: "warning: ..." on stderr.  A handler may be
 * installed (NULL restores the default); it is process-wide.
 */
typedef void (*vdk_warning_fn)(const char *msg, void *opaque);
VDK_API void vdk_set_warning_handler(vdk_warning_fn fn, void *opaque);
VDK_API void vdk_warn(const char *fmt, ...) VDK_PRINTF(1, 2);

#ifdef __cplusplus
}
#endif

#endif /* VDK_ERROR_H */
