/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for OVA archives: the input is the .ova in a memory
 * node.  The tar index (ustar, pax, GNU long names), the OVF disk list,
 * the manifest check and the opening of each disk (through the offset
 * window and the vmdk driver) all run on it; the OVF and manifest parsers
 * also run on the raw input directly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "formats/vmdk/ova.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(const char *msg, void *opaque)
{
    (void)msg;
    (void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vdk_set_warning_handler(quiet, NULL);
    if (size > (8u << 20))
        return 0;
    struct ovf_info ovf;
    if (ovf_parse((const char *)data, size, &ovf, NULL) == 0)
        ovf_info_free(&ovf);
    struct vdk_node *mem = fuzz_memory(data, size);
    if (!mem)
        return 0;
    struct tar_index idx;
    if (tar_index_read(mem, size, &idx, NULL) == 0)
        (void)ova_manifest_verify(mem, &idx, (const char *)data, size < 4096 ? size : 4096,
                                  NULL);
    tar_index_free(&idx);
    const struct vdk_driver *drv = vdk_driver_find("ova");
    for (int disk = 1; drv && disk <= 2; disk++) {
        struct vdk_node *n = vdk_node_new_internal(drv, "fuzz.ova");
        struct vdk_opts *o = vdk_opts_new();
        if (!n || !o) {
            if (n)
                vdk_node_free_internal(n);
            vdk_opts_free(o);
            break;
        }
        vdk_node_ref(mem);
        n->file = mem;
        vdk_opts_set(o, "disk", disk == 1 ? "1" : "2");
        if (disk == 2)
            vdk_opts_set(o, "verify", "on");
        if (drv->open(n, o, 0, NULL) == 0) {
            uint8_t buf[4096];
            if (n->size >= sizeof(buf))
                vdk_pread(n, buf, sizeof(buf), 0, 0);
            uint64_t pnum;
            if (n->size)
                vdk_block_status(n, 0, n->size, &pnum, NULL, NULL);
            struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
            if (vdk_get_info(n, &info, NULL) == 0)
                vdk_image_info_clear(&info);
            drv->close(n);
        }
        vdk_opts_free(o);
        vdk_node_free_internal(n);
    }
    vdk_node_unref(mem);
    return 0;
}
