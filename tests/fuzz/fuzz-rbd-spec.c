/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: rbd: image names (protocols/rbd-spec.c), qemu's syntax
 * rbd:POOL[/NAMESPACE]/IMAGE[@SNAP][:KEY=VALUE...] with backslash escapes.
 *
 * Checked beyond "no crash": a name that parses has a pool and an image
 * within the bounds, at most RBD_SPEC_MAX_PAIRS pairs, and a display name;
 * a name that fails says why and leaves the spec empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/rbd-spec.h"
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: separators, the escape,
   keys and values as qemu, libvirt and OpenStack write them, the bounds. */
static const char *const rbd_words[] = {
    "rbd:", "conf", "id", "keyring", "mon_host", "auth_supported", "key", "user",
    "client_mount_timeout", "rados_osd_op_timeout", "admin", "none", "cephx",
    "/etc/ceph/ceph.conf", "127.0.0.1\\:6789", "[::1]\\:6789", "pool", "ns", "image",
    "snap", "@", ":", "/", "=", "\\", "conf=", "id=", ".", "..", "",
};
static const size_t rbd_bounds[] = { RBD_SPEC_MAX_NAME, RBD_SPEC_MAX_LEN - 4 };
static const struct ft_grammar rbd_grammar = {
    ":/@=", '\\', false, rbd_words, sizeof(rbd_words) / sizeof(rbd_words[0]),
    rbd_bounds, 2,
};
FT_MUTATOR(rbd_grammar)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *v, bool required)
{
    if (!v) {
        if (required)
            abort();
        return;
    }
    if ((required && !*v) || strlen(v) > RBD_SPEC_MAX_NAME)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > RBD_SPEC_MAX_LEN + 64)
        return 0;
    /* Half the inputs get the prefix, so the mutations reach the body. */
    char *name = malloc(size + 5);
    if (!name)
        return 0;
    size_t off = (size && (data[0] & 1)) ? 4 : 0;
    memcpy(name, "rbd:", off);
    memcpy(name + off, data, size);
    name[off + size] = '\0';

    struct rbd_spec s;
    struct vdk_error *err = NULL;
    int r = vdk_rbd_spec_parse(name, &s, &err);
    if (r == 0) {
        if (err)
            abort();
        check_name(s.pool, true);
        check_name(s.image, true);
        check_name(s.ns, false);
        check_name(s.snap, false);
        if (s.n_pairs < 0 || s.n_pairs > RBD_SPEC_MAX_PAIRS)
            abort();
        for (int i = 0; i < s.n_pairs; i++)
            if (!s.key[i] || !*s.key[i] || !s.value[i])
                abort();
        char *d = vdk_rbd_spec_display(&s);
        if (!d)
            abort();
        free(d);
        vdk_rbd_spec_clear(&s);
    } else {
        if (!err || !vdk_error_msg(err) || s.pool || s.image || s.n_pairs)
            abort();
        vdk_error_free(err);
    }
    free(name);
    return 0;
}
