/* SPDX-License-Identifier: MIT */
/*
 * Test helper: read a JSON document that qemu-img printed (info, check,
 * measure) and print it again through vdk-img's printers (img-tool/output.c):
 *   reprint json FILE    - img_json_print(): must equal qemu-img's JSON
 *   reprint human FILE   - img_info_print_human() of an info object or of
 *                          each element of a --backing-chain array: must
 *                          equal qemu-img's human info text
 * This checks member order, escaping, the snapshot table and the generic
 * "Format specific information" dump on formats (qcow2 with snapshots,
 * bitmaps and LUKS encryption, LUKS) before vdk's own drivers exist.
 */
#include <stdio.h>
#include <string.h>

#include "img.h"
#include "output.h"

/* output.c and common.c refer to the dispatch table of main.c. */
const struct img_command img_commands[] = { { NULL, NULL, NULL, NULL } };

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "json") != 0 && strcmp(argv[1], "human") != 0)) {
        fprintf(stderr, "usage: reprint json|human FILE\n");
        return 2;
    }
    struct json_object *o = json_object_from_file(argv[2]);
    if (!o) {
        fprintf(stderr, "reprint: cannot parse %s\n", argv[2]);
        return 1;
    }
    if (strcmp(argv[1], "json") == 0) {
        img_json_print(stdout, o);
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (i)
                putchar('\n');
            img_info_print_human(stdout, json_object_array_get_idx(o, i));
        }
    } else {
        img_info_print_human(stdout, o);
    }
    json_object_put(o);
    return 0;
}
