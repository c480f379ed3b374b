/* SPDX-License-Identifier: MIT */
/* struct vdk_error: see include/vdk/error.h for the contract. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdk/error.h"

static int abs_code(int code)
{
    if (code < 0)
        code = -code;
    return code ? code : EIO;
}

int vdk_error_vsetf(struct vdk_error **errp, int code, const char *fmt,
                    va_list ap)
{
    code = abs_code(code);
    if (!errp || *errp)
        return -code;
    struct vdk_error *e = calloc(1, sizeof(*e));
    if (!e)
        return -code;
    e->code = code;
    if (vasprintf(&e->msg, fmt, ap) < 0) {
        e->msg = strdup("out of memory formatting an error message");
        if (!e->msg) {
            free(e);
            return -code;
        }
    }
    *errp = e;
    return -code;
}

int vdk_error_setf(struct vdk_error **errp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdk_error_vsetf(errp, code, fmt, ap);
    va_end(ap);
    return r;
}

int vdk_error_setf_errno(struct vdk_error **errp, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vdk_error_vsetf(errp, code, fmt, ap);
    va_end(ap);
    if (errp && *errp) {
        char *m = NULL;
        if (asprintf(&m, "%s: %s", (*errp)->msg, strerror(abs_code(code))) >= 0) {
            free((*errp)->msg);
            (*errp)->msg = m;
        }
    }
    return r;
}

void vdk_error_prepend(struct vdk_error **errp, const char *fmt, ...)
{
    if (!errp || !*errp)
        return;
    char *prefix = NULL, *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&prefix, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    if (asprintf(&m, "%s: %s", prefix, (*errp)->msg) >= 0) {
        free((*errp)->msg);
        (*errp)->msg = m;
    }
    free(prefix);
}

void vdk_error_propagate(struct vdk_error **dst, struct vdk_error *src)
{
    if (!src)
        return;
    if (dst && !*dst)
        *dst = src;
    else
        vdk_error_free(src);
}

const char *vdk_error_msg(const struct vdk_error *err)
{
    return err ? err->msg : "unknown error";
}

void vdk_error_free(struct vdk_error *err)
{
    if (!err)
        return;
    free(err->msg);
    free(err);
}

void vdk_error_report(const char *prog, struct vdk_error *err)
{
    if (!err)
        return;
    if (prog)
        fprintf(stderr, "%s: %s\n", prog, err->msg);
    else
        fprintf(stderr, "%s\n", err->msg);
    vdk_error_free(err);
}

static vdk_warning_fn warning_fn;
static void *warning_opaque;

void vdk_set_warning_handler(vdk_warning_fn fn, void *opaque)
{
    warning_fn = fn;
    warning_opaque = opaque;
}

void vdk_warn(const char *fmt, ...)
{
    char *m = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&m, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    if (warning_fn)
        warning_fn(m, warning_opaque);
    else
        fprintf(stderr, "warning: %s\n", m);
    free(m);
}
