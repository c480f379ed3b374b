/* SPDX-License-Identifier: MIT */
/*
 * Where an rbd image lives: qemu's filename syntax
 *
 *   rbd:POOL[/NAMESPACE]/IMAGE[@SNAPSHOT][:KEY=VALUE]...
 *
 * A backslash escapes the next character (so a value may hold ':' or '@',
 * e.g. mon_host=127.0.0.1\:6789).  The keys "conf" (a ceph.conf path) and
 * "id" (the user, "admin" if not given) are the parser's; every other pair
 * is a Ceph option passed to the cluster handle as it is ("keyring",
 * "mon_host", "client_mount_timeout", ...).
 *
 * The parser is bounded: the whole name is at most RBD_SPEC_MAX_LEN bytes,
 * each name at most RBD_SPEC_MAX_NAME, at most RBD_SPEC_MAX_PAIRS pairs.
 * It needs no librbd, so its fuzz target builds everywhere.
 */
#ifndef VDK_PROTOCOLS_RBD_SPEC_H
#define VDK_PROTOCOLS_RBD_SPEC_H

#include <stdbool.h>

#include "vdk/error.h"

#define RBD_SPEC_MAX_LEN 4096
#define RBD_SPEC_MAX_NAME 1024
#define RBD_SPEC_MAX_PAIRS 32

struct rbd_spec {
    char *pool, *ns, *image, *snap; /* ns, snap: NULL when absent */
    char *conf, *user;              /* NULL when absent */
    int n_pairs;
    char *key[RBD_SPEC_MAX_PAIRS];
    char *value[RBD_SPEC_MAX_PAIRS];
};

/* Does name start with "rbd:"? */
bool vdk_rbd_spec_is_rbd(const char *name);

/*
 * Parse name (which starts with "rbd:") into *s (zeroed first).  0, or
 * -EINVAL/-ENOMEM with errp set and *s empty.
 */
int vdk_rbd_spec_parse(const char *name, struct rbd_spec *s, struct vdk_error **errp);

/* Check one name (pool, namespace, image, snapshot) given as an option:
   non-empty when required, at most RBD_SPEC_MAX_NAME bytes, no NUL-less
   surprises.  0 or -EINVAL with errp set. */
int vdk_rbd_spec_check_name(const char *what, const char *v, bool required,
                            struct vdk_error **errp);

/* "pool/[ns/]image[@snap]" for messages; caller frees (NULL: no memory). */
char *vdk_rbd_spec_display(const struct rbd_spec *s);

void vdk_rbd_spec_clear(struct rbd_spec *s);

#endif
