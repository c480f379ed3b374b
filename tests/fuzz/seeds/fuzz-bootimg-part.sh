#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-bootimg-part: small whole disks made with sfdisk,
# mkfs.ext4 -d and mkfs.vfat + mtools in every layout vdk-boot reads
# (tests/integration/boot/image-lib.sh), and bare GPT/MBR tables.
set -eu
out=$1
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/image-lib.sh"
head -c 6000 /dev/urandom >"$T/kernel"
head -c 700 /dev/urandom >"$T/initrd"
export EXT4_SLACK_KB=600 MKFS_EXT4_OPTS="-O ^has_journal -N 64" ESP_SLACK_MB=1 ESP_VFAT_OPTS=
for l in gpt-ext4-bls gpt-ext4-links gpt-ext4-grub mbr-ext4-links mbr-ext4-bls esp-bls ext2-links; do
    mk_boot_disk "$l" "$out/$l" "$T/kernel" "$T/initrd" "console=ttyS0 root=/dev/vda1"
done
truncate -s 2M "$T/gpt"
printf 'label: gpt\nsize=100K\nsize=200K\nsize=300K, type=U\n' | sfdisk -q "$T/gpt" >/dev/null
cp "$T/gpt" "$out/gpt-3"
truncate -s 2M "$T/mbr"
printf 'label: dos\nsize=100K\ntype=5\nsize=100K\nsize=100K\nsize=100K\n' | sfdisk -q "$T/mbr" >/dev/null
cp "$T/mbr" "$out/mbr-logical"
