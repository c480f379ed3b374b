#!/bin/bash
# SPDX-License-Identifier: MIT
# Damaged images under vdk-boot without --kernel: each gives a one-line
# error and a non-zero exit (no crash, no hang) and is never written to;
# a damaged primary GPT falls back to the backup.  Disks are made by
# sfdisk, mkfs.ext4 -d, mkfs.vfat + mtools, and damaged with debugfs -w
# and small byte patches (python3 recomputes GPT CRCs where a case needs
# a table that is consistent but wrong).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/image-lib.sh"
VDK_BOOT=${VDK_BOOT:-$VDK_BUILD/guest-boot/vdk-boot}
V=6.1.0-test
MiB=1048576

head -c 300001 /dev/urandom >"$T/kernel"
head -c 20001 /dev/urandom >"$T/initrd"
mk_boot_disk gpt-ext4-bls "$T/base.img" "$T/kernel" "$T/initrd" "root=/dev/vda1"

poke() { # FILE OFFSET HEXBYTES
    printf "$(echo "$3" | sed 's/../\\x&/g')" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# bad IMAGE REGEX: listing fails with REGEX on one line; IMAGE unchanged.
bad() {
    local img=$1 re=$2 sum
    sum=$(md5sum <"$img")
    expect_fail "$re" "$VDK_BOOT" --disk "$img,format=raw" --kernel-from-image=list
    [ "$(wc -l <"$T/.err")" -eq 1 ] || { cat "$T/.err"; fail "error is not one line"; }
    [ "$(md5sum <"$img")" = "$sum" ] || fail "reading $img changed it"
    echo "ok: $(cat "$T/.err")"
}

# good IMAGE [REGEX]: listing works (a warning matching REGEX, if given).
good() {
    local rc=0
    "$VDK_BOOT" --disk "$1,format=raw" --kernel-from-image=list >"$T/list" 2>"$T/err" || rc=$?
    [ $rc -eq 0 ] || { cat "$T/err"; fail "listing $1 failed (exit $rc)"; }
    grep -q "^0\*" "$T/list" || fail "no entry on $1"
    [ -z "${2:-}" ] || grep -qE "$2" "$T/err" || { cat "$T/err"; fail "no warning /$2/"; }
}

# GPT helpers (python3): patch the header or entry array and fix CRCs.
gpt_py() {
    python3 - "$@" <<'PY'
import struct, sys, zlib
path, which, what = sys.argv[1], sys.argv[2], sys.argv[3]
f = open(path, 'r+b')
size = f.seek(0, 2)
for lba in ([1] if which == 'primary' else [size // 512 - 1] if which == 'backup'
            else [1, size // 512 - 1]):
    f.seek(lba * 512); h = bytearray(f.read(512))
    hs = struct.unpack_from('<I', h, 12)[0]
    ent_lba, n, es = struct.unpack_from('<QII', h, 72)
    if what == 'overlap':
        f.seek(ent_lba * 512); a = bytearray(f.read(n * es))
        first1 = struct.unpack_from('<Q', a, 32)[0]
        struct.pack_into('<Q', a, es + 32, first1 + 8)   # entry 2 starts inside 1
        f.seek(ent_lba * 512); f.write(a)
        struct.pack_into('<I', h, 88, zlib.crc32(bytes(a)))
    elif what == 'huge':
        struct.pack_into('<I', h, 80, 0xffffffff)
    struct.pack_into('<I', h, 16, 0)
    struct.pack_into('<I', h, 16, zlib.crc32(bytes(h[:hs])))
    f.seek(lba * 512); f.write(h)
PY
}

# ---- GPT
head -c 2048 "$T/base.img" >"$T/trunc.img"
bad "$T/trunc.img" 'partition table: GPT damaged'
cp "$T/base.img" "$T/c1.img"; poke "$T/c1.img" $((512 + 40)) ff
good "$T/c1.img" 'primary GPT header has a bad CRC; using the backup'
cp "$T/base.img" "$T/c2.img"; poke "$T/c2.img" $((1024 + 60)) 41
good "$T/c2.img" 'entry array has a bad CRC; using the backup'
size=$(stat -c %s "$T/base.img")
cp "$T/c1.img" "$T/c3.img"; poke "$T/c3.img" $((size - 512 + 40)) ff
bad "$T/c3.img" 'GPT damaged: primary has a bad CRC, backup has a bad CRC'
cp "$T/base.img" "$T/huge.img"; gpt_py "$T/huge.img" both huge
bad "$T/huge.img" 'bad entry count or size'
truncate -s 4M "$T/two.img"
printf 'label: gpt\nsize=1M\nsize=1M\n' | sfdisk -q "$T/two.img" >/dev/null
gpt_py "$T/two.img" both overlap
bad "$T/two.img" 'partitions 1 and 2 overlap'
echo "GPT: ok"

# ---- MBR: a partition past the end of a cut disk; an EBR chain loop.
mk_boot_disk mbr-ext4-links "$T/mbr.img" "$T/kernel" "$T/initrd"
head -c $((3 * MiB / 2)) "$T/mbr.img" >"$T/mbr-cut.img"
bad "$T/mbr-cut.img" 'partition 1 .* lies outside the disk'
mk_boot_disk mbr-ext4-bls "$T/ebr.img" "$T/kernel" "$T/initrd"
# The logical partition's EBR (sector 2048) links to itself.
poke "$T/ebr.img" $((2048 * 512 + 446 + 16 + 4)) 05
poke "$T/ebr.img" $((2048 * 512 + 446 + 16 + 8)) 00000000
bad "$T/ebr.img" 'extended boot record chain points backwards'
echo "MBR: ok"

# ---- ext4
cp "$T/base.img" "$T/sb.img"; poke "$T/sb.img" $((MiB + 1024 + 0x18)) 14000000
bad "$T/sb.img" 'partition 1: ext4: bad superblock \(block size\)'
cp "$T/base.img" "$T/sb2.img"; poke "$T/sb2.img" $((MiB + 1024 + 0x28)) 00000000
bad "$T/sb2.img" 'ext4: bad superblock \(blocks or inodes per group\)'

# Extent loops: the kernel's tree names a block whose node names itself.
r=$T/ext
mkdir -p "$r/boot"
cp "$T/kernel" "$r/boot/vmlinuz-$V"
head -c 8192 /dev/urandom >"$r/pad"
ln -s "boot/vmlinuz-$V" "$r/vmlinuz"
mk_ext4 "$T/ext.fs" "$r" -b 4096
ino=$(debugfs -R "stat /boot/vmlinuz-$V" "$T/ext.fs" 2>/dev/null | awk '/^Inode:/ { print $2; exit }')
loc=$(debugfs -R "imap <$ino>" "$T/ext.fs" 2>/dev/null | awk '/located at block/ { gsub(",", "", $4); print $4, $6 }')
pad=$(debugfs -R "bmap /pad 0" "$T/ext.fs" 2>/dev/null)
[ -n "$loc" ] && [ -n "$pad" ] || fail "debugfs imap/bmap gave nothing"
iblk=${loc% *} ioff=$(( ${loc#* } ))
le32() { printf '%02x%02x%02x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# i_block: header (magic f30a, 1 entry, max 4, depth 2), index -> pad.
poke "$T/ext.fs" $((iblk * 4096 + ioff + 0x28)) "0af30100040002000000000000000000$(le32 "$pad")0000"
# The pad block: header (depth 1), index -> itself.
poke "$T/ext.fs" $((pad * 4096)) "0af30100540101000000000000000000$(le32 "$pad")0000"
cp "$T/ext.fs" "$T/loop.fs"
mk_part_disk "$T/loop.img" gpt "L $T/loop.fs"
expect_fail 'partition 1: .*extent tree of inode [0-9]+ is damaged' \
    "$VDK_BOOT" --disk "$T/loop.img,format=raw" --kernel-from-image=extract:"$T"
# A huge entry count in the inode's own extent header.
poke "$T/ext.fs" $((iblk * 4096 + ioff + 0x28)) "0af3ffff04000000"
mk_part_disk "$T/count.img" gpt "L $T/ext.fs"
expect_fail 'extent tree of inode [0-9]+ is damaged' \
    "$VDK_BOOT" --disk "$T/count.img,format=raw" --kernel-from-image=extract:"$T"
echo "ext4 superblock, extent loop, huge extent count: ok"

# A directory loop (a hard link to /boot inside /boot) walked by a symlink
# through it 300 times; a symlink loop.
r=$T/dirloop
mkdir -p "$r/boot"
cp "$T/kernel" "$r/boot/vmlinuz-$V"
mk_ext4 "$T/dl.fs" "$r" -b 4096
target="boot/$(printf 'loop/%.0s' $(seq 1 300))vmlinuz-$V"
debugfs -w -R "link /boot /boot/loop" "$T/dl.fs" >/dev/null 2>&1
debugfs -w -R "symlink /vmlinuz $target" "$T/dl.fs" >/dev/null 2>&1
debugfs -R "stat /boot/loop" "$T/dl.fs" 2>/dev/null | grep -q 'Type: directory' ||
    fail "debugfs could not make the directory loop"
mk_part_disk "$T/dl.img" gpt "L $T/dl.fs"
bad "$T/dl.img" "partition 1: '/vmlinuz': (directories nested too deep|too many path components)"
r=$T/symloop
mkdir -p "$r/boot"
ln -s vmlinuz2 "$r/vmlinuz"
ln -s /boot/../vmlinuz "$r/vmlinuz2"
mk_ext4 "$T/sl.fs" "$r"
mk_part_disk "$T/sl.img" gpt "L $T/sl.fs"
bad "$T/sl.img" "partition 1: '/vmlinuz': too many levels of symbolic links"
echo "directory loop, symlink loop: ok"

# ---- vfat: a cluster chain naming itself; a damaged boot sector.
mk_boot_disk esp-bls "$T/esp.img" "$T/kernel" "$T/initrd"
first=$(MTOOLS_SKIP_CHECK=1 mshowfat -i "$T/esp.img@@$MiB" "::/EFI/Linux/vmlinuz-$V" | sed -n 's/.*<\([0-9]*\)[->].*/\1/p')
[ -n "$first" ] || fail "mshowfat gave no cluster"
rsv=$(od -An -tu2 -j $((MiB + 14)) -N2 "$T/esp.img" | tr -d ' ')
poke "$T/esp.img" $((MiB + rsv * 512 + first * 4)) "$(le32 "$first")"
expect_fail 'vfat: the cluster chain starting at [0-9]+ is damaged' \
    "$VDK_BOOT" --disk "$T/esp.img,format=raw" --kernel-from-image=extract:"$T"
mk_boot_disk esp-bls "$T/esp2.img" "$T/kernel" "$T/initrd"
poke "$T/esp2.img" $((MiB + 11)) 0300
bad "$T/esp2.img" 'partition 1: vfat: bad boot sector'
echo "vfat: ok"

# ---- filesystems we do not read; nothing to boot.
truncate -s 2M "$T/btrfs.fs"
printf '_BHRfS_M' | dd of="$T/btrfs.fs" bs=1 seek=$((0x10040)) conv=notrunc status=none
mk_part_disk "$T/btrfs.img" gpt "L $T/btrfs.fs"
bad "$T/btrfs.img" '^vdk-boot: disk .*: partition 1: btrfs is not supported; pass --kernel$'
truncate -s 2M "$T/xfs.fs"
printf 'XFSB' | dd of="$T/xfs.fs" conv=notrunc status=none
bad "$T/xfs.fs" 'whole disk: xfs is not supported; pass --kernel'
mkdir -p "$T/empty"
mk_ext4 "$T/empty.fs" "$T/empty"
bad "$T/empty.fs" 'no boot entry, /vmlinuz or grub.cfg found on the image; pass --kernel'
echo "unsupported and empty: ok"

# ---- option errors
expect_fail 'exclude each other' "$VDK_BOOT" --kernel "$T/kernel" --disk "$T/base.img" --kernel-from-image=list
expect_fail 'bad --kernel-from-image' "$VDK_BOOT" --disk "$T/base.img" --kernel-from-image=bogus
expect_fail 'bad --entry' "$VDK_BOOT" --disk "$T/base.img" --entry x
expect_fail 'no --kernel given and no --disk' "$VDK_BOOT" --kernel-from-image=list
expect_fail 'cannot create' "$VDK_BOOT" --disk "$T/base.img" --kernel-from-image=extract:"$T/no/such/dir"
echo "options: ok"
