#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vdi: small VDIs made now by qemu-img (dynamic and static,
# with data written by qemu-io).
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
qemu-img create -q -f vdi dyn-3m.vdi 3M
qemu-img create -q -f vdi -o static=on static-2m.vdi 2M
qemu-img create -q -f vdi data.vdi 4M
qemu-io -f vdi -c "write -P 0x41 0 4096" -c "write -P 0x42 2097152 512" data.vdi >/dev/null
# Block-map damage the structure-aware mutator makes, kept as seeds: two
# entries naming one block, an index past the allocated count, and the
# discarded value on an allocated block.
/usr/bin/python3 - data.vdi <<'PYEOF'
import sys
src = open(sys.argv[1], "rb").read()
bmap = int.from_bytes(src[0x154:0x158], "little")
def make(name, entry, value):
    b = bytearray(src)
    b[bmap + 4 * entry:bmap + 4 * entry + 4] = value.to_bytes(4, "little")
    open(name, "wb").write(b)
make("bmap-shared.vdi", 2, int.from_bytes(src[bmap:bmap + 4], "little"))
make("bmap-past-allocated.vdi", 1, 7)
make("bmap-discarded.vdi", 0, 0xfffffffe)
# From the 10-minute campaign: the data offset 2 GiB out (a new block
# would go there), and a block count past the blocks in the file.
def header(name, at, value):
    b = bytearray(src)
    b[at:at + 4] = value.to_bytes(4, "little")
    open(name, "wb").write(b)
header("data-far.vdi", 0x158, 0x80000000)
header("count-far.vdi", 0x184, 3)
PYEOF
# From the campaign's re-run: a repair (check -r all) clears a shared
# entry and moves the last block into the hole, and the data offset 2 GiB
# out sent that move there.
qemu-img create -q -f vdi three.vdi 4M
qemu-io -f vdi -c "write -P 0x43 0 3M" three.vdi >/dev/null
/usr/bin/python3 - three.vdi <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
bmap = int.from_bytes(b[0x154:0x158], "little")
b[bmap + 4:bmap + 8] = b[bmap:bmap + 4]
b[0x158:0x15c] = (0x80000000).to_bytes(4, "little")
open("repair-far.vdi", "wb").write(bytes(b))
PYEOF
rm -f three.vdi
