/* SPDX-License-Identifier: MIT */
/*
 * Shared by fuzz-bootimg-ext4 and fuzz-bootimg-vfat: open the input as one
 * filesystem and walk what vdk-boot walks (entry directories, the Debian
 * symlinks, grub.cfg, reading files), plus a listing of every directory
 * the root names.
 */
#ifndef VDK_FUZZ_BOOTIMG_FS_H
#define VDK_FUZZ_BOOTIMG_FS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "guest-boot/image/image.h"

typedef int (*fuzz_fs_open_fn)(const struct img_vol *v, struct img_fs **out,
                               struct vdk_error **errp);

static inline void fuzz_fs_walk(const uint8_t *data, size_t size,
                                fuzz_fs_open_fn open_fn)
{
    static const char *paths[] = {
        "/vmlinuz", "/initrd.img", "/boot/vmlinuz", "/boot/grub/grub.cfg",
        "/loader/loader.conf", "/EFI/Linux/vmlinuz-6.1.0-test", "/a/b/../c",
        "/boot/loader/entries/test-6.1.0-test.conf",
    };
    static const char *dirs[] = { "/", "/boot", "/loader/entries",
                                  "/boot/loader/entries", "/EFI/Linux" };
    struct img_mem m = { data, size };
    struct img_disk d;
    struct img_fs *fs = NULL;
    struct vdk_error *err = NULL;
    img_disk_from_mem(&d, &m);
    struct img_vol v = { &d, 0, size };
    int r = open_fn(&v, &fs, &err);
    if (r < 0) {
        if (r != -ENOENT && !err)
            abort(); /* a failure must explain itself */
        vdk_error_free(err);
        return;
    }
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *names[64];
        int n = img_fs_list_dir(fs, dirs[i], names, 64, NULL);
        for (int k = 0; k < n; k++) {
            char path[IMG_PATH_MAX];
            uint8_t *buf;
            size_t len;
            snprintf(path, sizeof(path), "%s/%s", dirs[i], names[k]);
            if (img_fs_read_file(fs, path, 1u << 20, &buf, &len, NULL) == 0)
                free(buf);
            free(names[k]);
        }
    }
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        uint8_t *buf;
        size_t len;
        struct vdk_error *e2 = NULL;
        r = img_fs_read_file(fs, paths[i], 4u << 20, &buf, &len, &e2);
        if (r == 0)
            free(buf);
        else if (!e2)
            abort();
        vdk_error_free(e2);
    }
    img_fs_close(fs);
}

#endif
