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
#include "fuzz-text-mutator.h"

/* The grammar for the structure-aware mutator: BLS lines and grub.cfg
   commands, blocks and variables, the bounds the parsers keep. */
static const char *const entry_words[] = {
    "title ", "version ", "linux ", "initrd ", "options ", "machine-id ", "sort-key ",
    "devicetree ", "architecture ", "efi ", "/vmlinuz", "/initrd.img", "root=/dev/vda1 ro",
    "menuentry 'L' {\n", "submenu 'S' {\n", "}\n", "{", "}", "linux\t", "initrd\t",
    "set default=", "\"0\"", "\"1>0\"", "\"${saved_entry}\"", "${root}", "$prefix",
    "search --set=root ", "insmod gzio\n", "if [ x ]; then\n", "fi\n", "else\n",
    "function f {\n", "'", "\"", "\\\n", ";", "#", "(hd0,gpt1)", "1.2~rc1", "6.5.6-300",
};
static const size_t entry_bounds[] = { IMG_OPTIONS_MAX, IMG_PATH_MAX, 255 };
static const struct ft_grammar entry_grammar = {
    " \t'\"{};", '\\', true, entry_words, sizeof(entry_words) / sizeof(entry_words[0]),
    entry_bounds, 3,
};
FT_MUTATOR(entry_grammar)

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
