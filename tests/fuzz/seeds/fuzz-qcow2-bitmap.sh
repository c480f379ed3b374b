#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-bitmap: small qcow2 images with persistent bitmaps
# made now by qemu-img and qemu-io: several granularities, enabled and
# disabled, dirty data in some clusters, an in-use bitmap (qemu-io killed
# while it held the image), a bitmap with an all-ones table entry, and an
# extension left stale by a clear autoclear bit.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
io() { qemu-io -f qcow2 "$@" >/dev/null; }
mk() { # cluster size, then "[--add options] NAME" lists separated by ';'
    n=$((n + 1))
    local img=$tmp/img cs=$1 a
    qemu-img create -q -f qcow2 -o cluster_size="$cs" "$img" 256k
    shift
    IFS=';' read -ra adds <<<"$*"
    for a in "${adds[@]}"; do
        local w
        read -ra w <<<"$a"
        # qemu-img bitmap --add [-g G] [--disable] FILE NAME
        qemu-img bitmap --add "${w[@]:0:${#w[@]}-1}" "$img" "${w[-1]}"
    done
    io -c "write -P 0x11 0 3k" -c "write -z 64k 4k" -c "write -P 0x22 130k 9k" "$img"
    cp "$img" "$out/bm-$n"
    rm -f "$img"
}
mk 512 "b0"
mk 4k "-g 512 fine;-g 64k coarse;--disable off"
mk 4k "-g 1k a;-g 2k b;-g 4k c;-g 8k d"
mk 64k "b0;-g 16k --disable b1"
# In use: qemu-io dies with the image open read-write.
qemu-img create -q -f qcow2 -o cluster_size=4k "$tmp/use" 256k
qemu-img bitmap --add -g 4k "$tmp/use" crashed
qemu-img bitmap --add --disable "$tmp/use" kept
qemu-io -f qcow2 -c "write 8k 4k" -c "sigraise 9" "$tmp/use" >/dev/null 2>&1 || true
cp "$tmp/use" "$out/bm-in-use"
# Stale extension: the autoclear bit cleared.
cp "$out/bm-2" "$out/bm-stale"
printf '\0' | dd of="$out/bm-stale" bs=1 seek=95 conv=notrunc status=none
# One seed for each kind of damage the structure-aware mutator makes, cut
# from bm-3 (four bitmaps, 4 KiB clusters): the extension, the directory,
# an entry's fields, a bitmap table.
/usr/bin/python3 - "$out/bm-3" "$out" <<'PYEOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
img = bytearray(open(src, 'rb').read())
be = lambda fmt, off: struct.unpack_from('>' + fmt, img, off)[0]
at = be('I', 100)
while be('I', at) not in (0, 0x23852875):
    at += 8 + ((be('I', at + 4) + 7) & ~7)
ext = at + 8
assert be('I', at) == 0x23852875
nb, dsize, doff = be('I', ext), be('Q', ext + 8), be('Q', ext + 16)
ents, e = [], doff
for _ in range(nb):
    ents.append(e)
    e += (24 + be('I', e + 20) + be('H', e + 18) + 7) & ~7
def seed(name, *edits, data=None):
    b = bytearray(img) if data is None else data
    for fmt, off, v in edits:
        struct.pack_into('>' + fmt, b, off, v)
    open(f'{out}/bm-dmg-{name}', 'wb').write(b)
e0, e1 = ents[0], ents[1]
t0 = be('Q', e0)
seed('nb-more', ('I', ext, nb + 1))
seed('nb-less', ('I', ext, nb - 1))
seed('ext-reserved', ('I', ext + 4, 1))
seed('dir-size-0', ('Q', ext + 8, 0))
seed('dir-size-short', ('Q', ext + 8, dsize - 8))
seed('dir-unaligned', ('Q', ext + 16, doff + 8))
seed('dir-past-eof', ('Q', ext + 16, len(img) + 65536))
seed('table-unaligned', ('Q', e0, t0 + 512))
seed('table-shared', ('Q', e1, t0))
seed('table-on-header', ('Q', e0, 0))
seed('table-size-0', ('I', e0 + 8, 0))
seed('table-size-huge', ('I', e0 + 8, 0x8000001))
seed('flags-reserved', ('I', e0 + 12, be('I', e0 + 12) | 8))
seed('flags-in-use', ('I', e1 + 12, be('I', e1 + 12) | 1))
seed('type-2', ('B', e0 + 16, 2))
seed('gran-8', ('B', e0 + 17, 8))
seed('gran-32', ('B', e0 + 17, 32))
seed('gran-coarse', ('B', e0 + 17, 31))
seed('name-size-over', ('H', e0 + 18, 1024))
seed('name-size-0', ('H', e0 + 18, 0))
seed('extra-size', ('I', e0 + 20, 8))
seed('te-past-eof', ('Q', t0, (len(img) + 65536) & ~511))
seed('te-reserved', ('Q', t0, be('Q', t0) | 2))
seed('te-ones-and-offset', ('Q', t0, be('Q', t0) | 1))
seed('te-on-l1', ('Q', t0, be('Q', 40)))
# the second bitmap renamed as the first (names are one byte here)
dup = bytearray(img)
dup[e1 + 24] = img[e0 + 24]
seed('dup-name', data=dup)
# extra data in the first entry, the directory moved along consistently
ext_img = bytearray(img)
ext_img[e0 + 24:e0 + 24] = bytes(8)
del ext_img[doff + dsize + 8:doff + dsize + 16]
struct.pack_into('>I', ext_img, e0 + 20, 8)
struct.pack_into('>I', ext_img, e0 + 12, be('I', e0 + 12) | 4)
struct.pack_into('>Q', ext_img, ext + 8, dsize + 8)
seed('extra-data', data=ext_img)
PYEOF
