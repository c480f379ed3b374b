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
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: lines of key=value and
   extent lines, their keywords, and the bounds the parser keeps. */
static const char *const vmdk_words[] = {
    "# Disk DescriptorFile\n", "version=1\n", "version=3\n", "encoding=\"UTF-8\"\n",
    "CID=fffffffe\n", "parentCID=ffffffff\n", "parentFileNameHint=\"p.vmdk\"\n",
    "createType=", "\"monolithicSparse\"", "\"monolithicFlat\"", "\"streamOptimized\"",
    "\"twoGbMaxExtentSparse\"", "\"twoGbMaxExtentFlat\"", "\"vmfs\"", "\"vmfsSparse\"",
    "\"seSparse\"", "\"custom\"", "RW ", "RDONLY ", "NOACCESS ", "SPARSE ", "FLAT ", "ZERO ",
    "VMFS ", "VMFSSPARSE ", "SESPARSE ", "RW 2048 FLAT \"f.vmdk\" 0\n",
    "RW 4294967296 SPARSE \"s.vmdk\"\n", "RDONLY 0 ZERO\n", "# Extent description\n",
    "# The Disk Data Base\n", "#DDB\n", "ddb.adapterType = \"ide\"\n",
    "ddb.geometry.cylinders = \"16383\"\n", "ddb.geometry.heads = \"16\"\n",
    "ddb.virtualHWVersion = \"4\"\n", "ddb.uuid.image", "ddb.longContentID", "\"", "=",
    "parentFileNameHint", "parentCID", "CID", "isNativeSnapshot=\"no\"\n",
};
static const size_t vmdk_bounds[] = { VMDK_MAX_DESC_LINE, 255, 1024 };
static const struct ft_grammar vmdk_grammar = {
    "= \"", 0, true, vmdk_words, sizeof(vmdk_words) / sizeof(vmdk_words[0]), vmdk_bounds, 3,
};
FT_MUTATOR(vmdk_grammar)

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
