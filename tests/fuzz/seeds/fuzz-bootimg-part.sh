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
# What the structure-aware mutator (fuzz-bootimg-part.c) makes, from
# gpt-3, both CRCs resealed: a partition reversed, one overlapping
# another, one past the usable area, an entry size of 129 and 8192,
# 1025 entries, the header naming the wrong own location, the entry
# array on the header, the backup header's location past the end; an MBR
# partition past the end and an extended partition pointing at itself.
/usr/bin/python3 - "$out/gpt-3" "$out/mbr-logical" "$out" <<'PYEOF'
import struct, sys, zlib
gpt, mbr, out = sys.argv[1], sys.argv[2], sys.argv[3]
img = bytearray(open(gpt, 'rb').read())
def seal(b, h=512):
    at, n, es = struct.unpack_from('<Q', b, h + 72)[0] * 512, *struct.unpack_from('<II', b, h + 80)
    if n * es <= 1 << 20 and at + n * es <= len(b):
        struct.pack_into('<I', b, h + 88, zlib.crc32(b[at:at + n * es]))
    hs = struct.unpack_from('<I', b, h + 12)[0]
    struct.pack_into('<I', b, h + 16, 0)
    struct.pack_into('<I', b, h + 16, zlib.crc32(b[h:h + hs]))
def seed(name, *edits, base=img, sealed=True):
    b = bytearray(base)
    for fmt, off, v in edits:
        struct.pack_into('<' + fmt, b, off, v)
    if sealed:
        seal(b)
    open(f'{out}/dmg-{name}', 'wb').write(b)
ent = struct.unpack_from('<Q', img, 512 + 72)[0] * 512
first = lambda i: struct.unpack_from('<Q', img, ent + 128 * i + 32)[0]
last = lambda i: struct.unpack_from('<Q', img, ent + 128 * i + 40)[0]
seed('gpt-reversed', ('Q', ent + 32, last(0)), ('Q', ent + 40, first(0)))
seed('gpt-overlap', ('Q', ent + 128 + 32, first(0)))
seed('gpt-past-usable', ('Q', ent + 40, struct.unpack_from('<Q', img, 512 + 48)[0] + 1))
seed('gpt-entry-size-129', ('I', 512 + 84, 129))
seed('gpt-entry-size-8192', ('I', 512 + 84, 8192))
seed('gpt-entries-1025', ('I', 512 + 80, 1025))
seed('gpt-wrong-self', ('Q', 512 + 24, 2))
seed('gpt-array-on-header', ('Q', 512 + 72, 1))
seed('gpt-backup-past-end', ('Q', 512 + 32, len(img) // 512 + 1))
seed('gpt-header-size-93', ('I', 512 + 12, 93))
seed('gpt-bad-crc', ('I', 512 + 16, 0), sealed=False)
m = bytearray(open(mbr, 'rb').read())
seed('mbr-past-end', ('I', 446 + 8, len(m) // 512 + 8), base=m, sealed=False)
ext = next(i for i in range(4) if m[446 + 16 * i + 4] in (5, 15, 0x85))
start = struct.unpack_from('<I', m, 446 + 16 * ext + 8)[0]
# the first EBR's link entry pointing back at the first EBR (a loop)
seed('mbr-ebr-loop', ('I', start * 512 + 446 + 16 + 8, 0), ('B', start * 512 + 446 + 16 + 4, 5),
     ('I', start * 512 + 446 + 16 + 12, 1), base=m, sealed=False)
PYEOF
