/* SPDX-License-Identifier: MIT */
/*
 * vdk-boot's boot entry parsers on arbitrary text: the input is parsed as
 * a BLS Type #1 entry and as a grub.cfg; the BLS order and the version
 * comparison run over what came out.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guest-boot/image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct img_choice c[IMG_CHOICES_MAX];
    struct vdk_error *err = NULL;
    int def = -1;
    int n = img_grub_parse((const char *)data, size, c, IMG_CHOICES_MAX, &def, &err);
    if (n < 0 && !err)
        abort();
    if (n >= 0 && (def < 0 || (n > 0 && def >= n) || (n == 0 && def != 0)))
        abort();
    for (int i = 0; i < n; i++)
        if (!c[i].kernel || !c[i].options || c[i].ninitrd > IMG_INITRD_MAX)
            abort();
    vdk_error_free(err);
    err = NULL;
    /* Two BLS entries: the whole input and its second half. */
    int nb = 0;
    struct img_choice bls[2];
    if (img_bls_parse((const char *)data, size, "a-1.conf", &bls[0], &err) == 0)
        nb++;
    vdk_error_free(err);
    err = NULL;
    if (img_bls_parse((const char *)data + size / 2, size - size / 2,
                      "b-2.conf", &bls[nb], &err) == 0)
        nb++;
    vdk_error_free(err);
    img_bls_sort(bls, nb);
    if (nb == 2 && img_version_cmp(bls[0].version, bls[1].version) !=
                   -img_version_cmp(bls[1].version, bls[0].version))
        abort();  /* the order must be antisymmetric */
    for (int i = 0; i < nb; i++)
        img_choice_clear(&bls[i]);
    for (int i = 0; i < n; i++)
        img_choice_clear(&c[i]);
    return 0;
}
