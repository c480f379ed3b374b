#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-bootimg-ext4: filesystems made with mkfs.ext4/ext3/ext2 -d
# holding the layouts vdk-boot reads: extents (4 KiB and 1 KiB blocks),
# indirect blocks (ext2/ext3), an htree directory (e2fsck -D), fast and
# slow symlinks, BLS entries and a grub.cfg.
set -eu
out=$1
. "$VDK_SRC/tests/integration/lib.sh"
r=$T/root
mkdir -p "$r/boot/loader/entries" "$r/boot/grub" "$r/EFI/Linux" "$r/a/c"
head -c 70000 /dev/urandom >"$r/boot/vmlinuz-6.1.0-test"
head -c 3000 /dev/urandom >"$r/boot/initrd.img-6.1.0-test"
printf 'title T\nlinux /boot/vmlinuz-6.1.0-test\ninitrd /boot/initrd.img-6.1.0-test\noptions ro\n' \
    >"$r/boot/loader/entries/test-6.1.0-test.conf"
printf 'menuentry "x" {\n linux /boot/vmlinuz-6.1.0-test ro\n}\n' >"$r/boot/grub/grub.cfg"
ln -s boot/vmlinuz-6.1.0-test "$r/vmlinuz"
ln -s "/boot/$(printf 'x%.0s' $(seq 1 70))/../initrd.img-6.1.0-test" "$r/initrd.img"
mkdir -p "$r/boot/$(printf 'x%.0s' $(seq 1 70))"
for i in $(seq 1 120); do echo $i >"$r/a/c/file-with-a-long-name-$i"; done
mk() { rm -f "$2"; "$1" -q -F -d "$r" "${@:4}" "$2" "$3" >/dev/null 2>&1; }
mk mkfs.ext4 "$out/ext4-4k" 1200k -O ^has_journal -N 200 -b 4096
mk mkfs.ext4 "$out/ext4-1k" 1000k -O ^has_journal -N 200 -b 1024
mk mkfs.ext2 "$out/ext2-1k" 800k -N 200 -b 1024
mk mkfs.ext3 "$out/ext3-1k" 1800k -N 200 -b 1024 -J size=1
mk mkfs.ext4 "$out/ext4-64bit" 1000k -O 64bit,^has_journal -N 200 -b 1024
cp "$out/ext4-1k" "$out/ext4-htree"
e2fsck -fyD "$out/ext4-htree" >/dev/null 2>&1 || [ $? -le 2 ]
