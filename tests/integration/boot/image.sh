#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-boot without --kernel: the kernel, initrd and options an image holds.
# Disks are built here by sfdisk, mkfs.ext4/ext2 -d, mkfs.vfat + mtools
# (tests/integration/boot/image-lib.sh) in every layout the reader knows;
# what --kernel-from-image=extract:DIR reads must be byte-identical to
# what debugfs and mcopy read out of the same disk.  Needs no /dev/kvm
# (nothing boots here; image-boot.sh boots the test guest from images).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/image-lib.sh"
VDK_BOOT=${VDK_BOOT:-$VDK_BUILD/guest-boot/vdk-boot}
V=6.1.0-test
MiB=1048576

vb() { "$VDK_BOOT" "$@"; }

# extract DISK[,opts] DIR [vdk-boot args]: the entry's files into DIR.
extract() {
    local disk=$1 dir=$2; shift 2
    rm -rf "$dir"
    mkdir -p "$dir"
    vb --disk "$disk" --kernel-from-image="extract:$dir" "$@" 2>"$T/err" ||
        { cat "$T/err" >&2; fail "extract from $disk failed"; }
    if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$T/err"; then
        cat "$T/err" >&2; fail "sanitizer report on $disk"
    fi
}

# dump_ext4 DISK BYTE_OFFSET PATH OUT: debugfs's copy of a file.
dump_ext4() {
    rm -f "$4"
    debugfs -R "dump $3 $4" "$1?offset=$2" >/dev/null 2>&1 || fail "debugfs dump $3 failed"
    [ -f "$4" ] || fail "debugfs did not dump $3"
}

# dump_vfat DISK BYTE_OFFSET PATH OUT: mcopy's copy of a file.
dump_vfat() {
    rm -f "$4"
    MTOOLS_SKIP_CHECK=1 mcopy -n -i "$1@@$2" "::$3" "$4" || fail "mcopy $3 failed"
}

head -c 3000017 /dev/urandom >"$T/kernel"
head -c 700001 /dev/urandom >"$T/initrd"

# ---- every layout, a fake kernel: list, extract, compare with the tools.
for l in gpt-ext4-bls gpt-ext4-links gpt-ext4-grub mbr-ext4-links mbr-ext4-bls \
         esp-bls ext2-links ext3-links; do
    d=$T/$l.img
    mk_boot_disk "$l" "$d" "$T/kernel" "$T/initrd" "console=ttyS0 quiet root=/dev/vda1"
    cp "$d" "$T/orig.img"
    vb --disk "$d" --kernel-from-image=list >"$T/list" 2>"$T/err" ||
        { cat "$T/err"; fail "$l: list failed"; }
    grep -q '^0\* ' "$T/list" || { cat "$T/list"; fail "$l: no default entry listed"; }
    extract "$d" "$T/x"
    same_file "$T/x/vmlinuz" "$T/kernel"
    same_file "$T/x/initrd" "$T/initrd"
    case $l in
    mbr-ext4-bls) off=$((4096 * 512)) ;;
    *) off=$MiB ;;
    esac
    case $l in
    esp-bls)
        grep -q 'ESP 6.1.0-test (bls, partition 1)' "$T/list" || fail "$l: wrong entry"
        dump_vfat "$d" $off "/EFI/Linux/vmlinuz-$V" "$T/tool-k"
        dump_vfat "$d" $off "/EFI/Linux/initrd-$V.img" "$T/tool-i" ;;
    *)
        dump_ext4 "$d" $off "/boot/vmlinuz-$V" "$T/tool-k"
        dump_ext4 "$d" $off "/boot/initrd.img-$V" "$T/tool-i" ;;
    esac
    same_file "$T/x/vmlinuz" "$T/tool-k"
    same_file "$T/x/initrd" "$T/tool-i"
    case $l in
    *-links) grep -q 'root=PARTUUID=.* ro' "$T/x/cmdline" || fail "$l: no root= made up: $(cat "$T/x/cmdline")"
             grep -q '(symlink, partition 1)' "$T/list" || fail "$l: not the symlink entry" ;;
    *) [ "$(cat "$T/x/cmdline")" = "console=ttyS0 quiet root=/dev/vda1" ] ||
           fail "$l: options not taken from the entry: $(cat "$T/x/cmdline")" ;;
    esac
    same_file "$d" "$T/orig.img"     # reading wrote nothing
    echo "layout $l: ok"
done

# ---- --append adds to the entry's options; console=ttyS0 only when none.
d=$T/gpt-ext4-bls.img
extract "$d" "$T/x" --append "init=/bin/sh"
[ "$(cat "$T/x/cmdline")" = "console=ttyS0 quiet root=/dev/vda1 init=/bin/sh" ] ||
    fail "--append: $(cat "$T/x/cmdline")"
mk_boot_disk gpt-ext4-bls "$T/nocons.img" "$T/kernel" "" "root=/dev/vda1 ro"
extract "$T/nocons.img" "$T/x" --append "quiet"
[ "$(cat "$T/x/cmdline")" = "console=ttyS0 root=/dev/vda1 ro quiet" ] ||
    fail "console default: $(cat "$T/x/cmdline")"
[ ! -e "$T/x/initrd" ] || fail "an entry without initrd extracted one"

# ---- the formats and chains libvdk opens.
qemu-img convert -q -f raw -O qcow2 "$d" "$T/d.qcow2"
qemu-img create -q -f qcow2 -b "$T/d.qcow2" -F qcow2 "$T/top.qcow2"
qemu-img convert -q -f raw -O vpc "$d" "$T/d.vhd"
retry_setup --if "$LOAD_FLAKES" qemu-img convert -q -f raw -O luks --object secret,id=s0,data=vdk-test-pass \
    -o key-secret=s0,iter-time=10 "$d" "$T/d.luks"
for img in d.qcow2 top.qcow2 d.vhd d.luks; do
    VDK_SECRET=vdk-test-pass extract "$T/$img" "$T/x"
    same_file "$T/x/vmlinuz" "$T/kernel"
    same_file "$T/x/initrd" "$T/initrd"
done
echo "qcow2, qcow2 overlay, VHD, LUKS: ok"

# ---- htree directories (many files, e2fsck -D indexes them) and extents.
r=$T/htree
mkdir -p "$r/boot"
for i in $(seq 1 3000); do : >"$r/boot/config-file-with-a-long-name-$i"; done
cp "$T/kernel" "$r/boot/vmlinuz-$V"
cp "$T/initrd" "$r/boot/initrd.img-$V"
ln -s "boot/vmlinuz-$V" "$r/vmlinuz"
ln -s "/boot/initrd.img-$V" "$r/initrd.img"
mk_ext4 "$T/htree.fs" "$r"
e2fsck -fyD "$T/htree.fs" >/dev/null 2>&1 || [ $? -le 2 ] || fail "e2fsck -D failed"
debugfs -R "htree /boot" "$T/htree.fs" 2>/dev/null | grep -q 'Root node dump' ||
    fail "/boot did not get an htree index"
debugfs -R "stat /boot/vmlinuz-$V" "$T/htree.fs" 2>/dev/null | grep -q 'EXTENTS' ||
    fail "the kernel is not extent-mapped"
mk_part_disk "$T/htree.img" gpt "L $T/htree.fs"
extract "$T/htree.img" "$T/x"
same_file "$T/x/vmlinuz" "$T/kernel"
same_file "$T/x/initrd" "$T/initrd"
# The whole disk as the filesystem: no partition table.
extract "$T/htree.fs" "$T/x"
same_file "$T/x/vmlinuz" "$T/kernel"
grep -q 'root=/dev/vda ro' "$T/x/cmdline" || fail "whole-disk root=: $(cat "$T/x/cmdline")"
echo "htree + extents, whole-disk filesystem: ok"

# ---- a GPT of 4096-byte sectors (sfdisk here cannot make one for a file:
# python3 writes the table as the UEFI spec lays it out, CRCs included).
python3 - "$T/htree.fs" "$T/gpt4k.img" <<'PY'
import os, struct, sys, uuid, zlib
fs, out = sys.argv[1], sys.argv[2]
ss, start = 4096, 256
fsz = os.path.getsize(fs)
nfs = (fsz + ss - 1) // ss
nlba = start + nfs + 64
ents = bytearray(128 * 128)
struct.pack_into('<16s16sQQQ', ents, 0, uuid.UUID('0fc63daf-8483-4772-8e79-3d69d8477de4').bytes_le,
                 uuid.uuid4().bytes_le, start, start + nfs - 1, 0)
def hdr(my, alt, ent_lba):
    h = bytearray(ss)
    struct.pack_into('<8sIIIIQQQQ16sQIII', h, 0, b'EFI PART', 0x10000, 92, 0, 0, my, alt,
                     6, nlba - 6, uuid.uuid4().bytes_le, ent_lba, 128, 128, zlib.crc32(ents))
    struct.pack_into('<I', h, 16, zlib.crc32(bytes(h[:92])))
    return h
mbr = bytearray(512)
struct.pack_into('<B3sB3sII', mbr, 446, 0, b'\0\2\0', 0xee, b'\xff\xff\xff', 1, nlba - 1)
mbr[510:512] = b'\x55\xaa'
with open(out, 'wb') as f:
    f.truncate(nlba * ss)
    f.write(mbr)
    f.seek(ss); f.write(hdr(1, nlba - 1, 2))
    f.seek(2 * ss); f.write(ents)
    f.seek((nlba - 5) * ss); f.write(ents)
    f.seek((nlba - 1) * ss); f.write(hdr(nlba - 1, 1, nlba - 5))
    f.seek(start * ss); f.write(open(fs, 'rb').read())
PY
extract "$T/gpt4k.img" "$T/x"
same_file "$T/x/vmlinuz" "$T/kernel"
echo "GPT with 4096-byte sectors: ok"

# ---- BLS order, --entry, long symlinks.
r=$T/bls
mkdir -p "$r/loader/entries"
for k in 1 2 3; do head -c $((100000 + k)) /dev/urandom >"$r/vmlinuz-$k"; done
printf 'title five\nversion 5.10\nlinux /vmlinuz-1\noptions one\n' >"$r/loader/entries/a-5.10.conf"
printf 'title six\nversion 6.1\nlinux /vmlinuz-2\noptions two\ninitrd /i1\ninitrd /i2\n' >"$r/loader/entries/a-6.1.conf"
head -c 1001 /dev/urandom >"$r/i1"
head -c 2000 /dev/urandom >"$r/i2"
printf 'title keyed\nsort-key aaa\nversion 1\nlinux /vmlinuz-3\noptions three\n' >"$r/loader/entries/z.conf"
printf 'title uki\nefi /EFI/Linux/x.efi\n' >"$r/loader/entries/uki.conf"
mk_ext4 "$T/bls.fs" "$r"
mk_part_disk "$T/bls.img" gpt "L $T/bls.fs"
vb --disk "$T/bls.img" --kernel-from-image=list >"$T/list"
[ "$(grep -E '^[0-9]' "$T/list" | cut -d' ' -f1,2 | tr '\n' ' ')" = "0* keyed 1 six 2 five " ] ||
    { cat "$T/list"; fail "BLS order wrong"; }
extract "$T/bls.img" "$T/x" --entry 1
same_file "$T/x/vmlinuz" "$r/vmlinuz-2"
# Two initrds: concatenated, the second 4-byte aligned (as grub does).
{ cat "$r/i1"; head -c 3 /dev/zero; cat "$r/i2"; } >"$T/i12"
same_file "$T/x/initrd" "$T/i12"
[ "$(cat "$T/x/cmdline")" = "console=ttyS0 two" ] || fail "--entry 1 options"
extract "$T/bls.img" "$T/x"
same_file "$T/x/vmlinuz" "$r/vmlinuz-3"
expect_fail 'no entry 7' vb --disk "$T/bls.img" --entry 7 --kernel-from-image=extract:"$T/x"
echo "BLS order and --entry: ok"

# ---- grub.cfg: submenus and set default="1>0"; a separate /boot partition.
r=$T/grub
mkdir -p "$r/grub"
head -c 50001 /dev/urandom >"$r/vmlinuz-a"
head -c 50002 /dev/urandom >"$r/vmlinuz-b"
cat >"$r/grub/grub.cfg" <<'CFG'
set default="1>1"
menuentry 'A' { linux /boot/vmlinuz-a root=/dev/vda2 a }
submenu 'Advanced' {
	menuentry 'A recovery' {
		linux /boot/vmlinuz-a root=/dev/vda2 single
	}
	menuentry "B" --class x {
		linux	(hd0,gpt1)/vmlinuz-b root=/dev/vda2 ro $vt_handoff b
		initrd	/boot/vmlinuz-a
	}
}
CFG
mk_ext4 "$T/grub.fs" "$r"
mk_part_disk "$T/grub.img" gpt "L $T/grub.fs" "L $T/grub.fs"
vb --disk "$T/grub.img" --kernel-from-image=list >"$T/list"
grep -q '^2\* B (grub, partition 1)' "$T/list" || { cat "$T/list"; fail "grub default 1>1 not chosen"; }
extract "$T/grub.img" "$T/x"
same_file "$T/x/vmlinuz" "$r/vmlinuz-b"
same_file "$T/x/initrd" "$r/vmlinuz-a"
[ "$(cat "$T/x/cmdline")" = "console=ttyS0 root=/dev/vda2 ro b" ] || fail "grub options: $(cat "$T/x/cmdline")"
echo "grub.cfg: ok"

# ---- FAT12 and FAT16 ESPs with long names, and the real Debian kernel.
ESP_VFAT_OPTS= ESP_SLACK_MB=1 mk_boot_disk esp-bls "$T/fat.img" "$T/kernel" "$T/initrd" "ro"
extract "$T/fat.img" "$T/x"
same_file "$T/x/vmlinuz" "$T/kernel"
debian_kernel
mk_initramfs "$T/initrd.gz"
for l in gpt-ext4-bls mbr-ext4-links esp-bls; do
    d=$T/deb-$l.img
    mk_boot_disk "$l" "$d" "$DEB_VMLINUZ" "$T/initrd.gz" "console=ttyS0 panic=-1"
    extract "$d" "$T/x"
    same_file "$T/x/vmlinuz" "$DEB_VMLINUZ"
    same_file "$T/x/initrd" "$T/initrd.gz"
    case $l in
    esp-bls) dump_vfat "$d" $MiB "/EFI/Linux/vmlinuz-$V" "$T/tool-k" ;;
    *) dump_ext4 "$d" $MiB "/boot/vmlinuz-$V" "$T/tool-k" ;;
    esac
    same_file "$T/x/vmlinuz" "$T/tool-k"
done
echo "Debian kernel $(basename "$DEB_VMLINUZ") in gpt-ext4-bls, mbr-ext4-links, esp-bls: ok"
