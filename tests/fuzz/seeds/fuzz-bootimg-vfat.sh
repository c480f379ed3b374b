#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-bootimg-vfat: FAT12, FAT16 and FAT32 ESPs made with
# mkfs.vfat and filled with mtools (long and short names, BLS entries);
# the FAT32 one is cut after its first files (the reader takes a volume
# shorter than its boot sector says).
set -eu
out=$1
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/image-lib.sh"
e=$T/esp
mkdir -p "$e/loader/entries" "$e/EFI/Linux"
head -c 20000 /dev/urandom >"$e/EFI/Linux/vmlinuz-6.1.0-test"
head -c 3000 /dev/urandom >"$e/EFI/Linux/initrd-6.1.0-test.img"
printf 'title ESP\nlinux /EFI/Linux/vmlinuz-6.1.0-test\ninitrd /EFI/Linux/initrd-6.1.0-test.img\noptions ro\n' \
    >"$e/loader/entries/linux-6.1.0-test.conf"
echo 'timeout 3' >"$e/loader/loader.conf"
echo short >"$e/SHORT.TXT"
VFAT_OPTS="-F 12" mk_vfat "$out/fat12" 1 "$e"
VFAT_OPTS="-F 16 -s 1" mk_vfat "$out/fat16" 3 "$e"
VFAT_OPTS="-F 32 -s 1" mk_vfat "$T/fat32" 34 "$e"
head -c $((1100 * 1024)) "$T/fat32" >"$out/fat32-cut"
