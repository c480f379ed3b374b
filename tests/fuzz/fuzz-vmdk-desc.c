/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for VMDK text descriptors: probe, parse (bounds on
 * size, lines and extents), look up ddb keys, and rewrite the parent
 * fields as rebase does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk/vmdk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (2u << 20))
        return 0;
    (void)vmdk_desc_probe(data, size < 4096 ? size : 4096);
    struct vmdk_desc d;
    if (vmdk_desc_parse((const char *)data, size, &d, NULL) < 0)
        return 0;
    (void)vmdk_desc_ddb(&d, "ddb.adapterType");
    for (size_t i = 0; i < d.n_ext; i++)
        (void)vmdk_ext_type_name(d.ext[i].type);
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = 0;
        char *a = vmdk_desc_set(text, "parentCID", "1234abcd");
        char *b = a ? vmdk_desc_set(a, "parentFileNameHint", "\"p.vmdk\"") : NULL;
        char *c = b ? vmdk_desc_set(b, "parentFileNameHint", NULL) : NULL;
        free(a);
        free(b);
        free(c);
        free(text);
    }
    vmdk_desc_free(&d);
    return 0;
}
