/* SPDX-License-Identifier: MIT */
/*
 * Secrets (passphrases, keys) handed to the library by id, the way qemu
 * does with "--object secret,id=ID,data=...|file=...".
 *
 * Secrets never come from a command line argument alone without a warning
 * (data= is visible to other users in ps), are never logged or put into
 * error messages, live in mlock()ed memory where possible, and are wiped
 * (OPENSSL_cleanse) when freed.
 */
#ifndef VDK_SECRET_H
#define VDK_SECRET_H

#include <stddef.h>

#include "vdk/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Add a user-creatable object from its qemu-style definition, e.g.
 *   "secret,id=sec0,file=/run/pass"  or  "secret,id=sec0,data=letmein"
 * Supported types: "secret" with data= or file=, and format=raw|base64.
 * data= prints a warning that the value is visible to other users.
 * A duplicate id is an error.
 */
VDK_API int vdk_object_add(const char *def, struct vdk_error **errp);

/*
 * Look up secret `id`.  On success *out is a NUL-terminated copy in locked
 * memory and *len its length (without the NUL); release it with
 * vdk_secret_free().  Unknown id: -ENOENT "no secret with id 'x'".
 */
VDK_API int vdk_secret_get(const char *id, char **out, size_t *len, struct vdk_error **errp);

/*
 * Passphrase lookup for drivers (LUKS key-secret and friends), in order:
 *  1. the secret registered with --object under `id`;
 *  2. the environment variable VDK_SECRET_<ID> (id upper-cased, every
 *     character other than A-Z and 0-9 replaced by '_'), or VDK_SECRET when
 *     id is NULL (no key-secret given);
 *  3. when stdin is a terminal, a prompt on /dev/tty without echo; the
 *     answer is remembered under id for the rest of the process.
 * `what` names the purpose in the prompt ("LUKS passphrase").  The value
 * never appears in messages.  Same result contract as vdk_secret_get().
 */
VDK_API int vdk_secret_lookup(const char *id, const char *what, char **out, size_t *len,
                      struct vdk_error **errp);

/* Wipe and free a buffer from vdk_secret_get() (or any secret copy). */
VDK_API void vdk_secret_free(char *data, size_t len);

/* Drop every registered object (wiping secrets). */
VDK_API void vdk_objects_clear(void);

#ifdef __cplusplus
}
#endif

#endif
