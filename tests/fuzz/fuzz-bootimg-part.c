/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot's image reader on an arbitrary disk: partition tables (GPT with
 * its backup, MBR with logical partitions), then the whole scan (every
 * filesystem, every entry kind), the list and loading the default entry.
 */
#include <stdint.h>
#include <stdlib.h>

#include "guest-boot/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct img_boot b;
    static FILE *null;
    struct img_mem m = { data, size };
    struct img_disk d;
    struct img_ptable t;
    struct vdk_error *err = NULL;

    if (!null && !(null = fopen("/dev/null", "w")))
        return 0;
    img_disk_from_mem(&d, &m);
    if (img_part_scan(&d, &t, &err) == 0) {
        /* What the scan accepted lies inside the disk, without overlaps. */
        for (int i = 0; i < t.n; i++)
            if (t.part[i].start > size || t.part[i].size > size - t.part[i].start)
                abort();
    } else if (!err) {
        abort(); /* a failure must explain itself */
    }
    vdk_error_free(err);
    err = NULL;
    if (img_boot_scan(&d, &b, &err) == 0) {
        struct img_loaded l;
        img_boot_list(&b, null);
        if (img_boot_load(&b, -1, 16u << 20, 16u << 20, &l, NULL) == 0)
            img_loaded_free(&l);
        img_boot_free(&b);
    } else if (!err) {
        abort();
    }
    vdk_error_free(err);
    return 0;
}
