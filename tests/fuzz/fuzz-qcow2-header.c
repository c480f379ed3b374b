/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: qcow2 header, header extensions and feature bits.
 * The input is the image file; it is opened read-only and its info built.
 */
#include <json-c/json.h>

#include "fuzz-qcow2-common.h"
#include "fuzz-qcow2-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (!file)
        return 0;
    struct vdk_node n;
    memset(&n, 0, sizeof(n));
    if (fuzz_open(&n, file, 0) == 0) {
        struct vdk_driver_info info = { 0 };
        if (qcow2_get_info(&n, &info, NULL) == 0)
            json_object_put(info.format_specific);
        fuzz_close(&n);
    }
    vdk_node_unref(file);
    return 0;
}
