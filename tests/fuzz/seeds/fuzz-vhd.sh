#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vhd: small VHDs made now by qemu-img (fixed, dynamic,
# force_size, with data written by qemu-io), and differencing images made
# by vdk's vhd-tool when the build has it.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
qemu-img create -q -f vpc dyn-1m.vhd 1M
qemu-img create -q -f vpc -o force_size=on dyn-force.vhd 3M
qemu-img create -q -f vpc -o subformat=fixed fixed-256k.vhd 256K
qemu-img create -q -f vpc dyn-data.vhd 5M
qemu-io -f vpc -c "write -P 0x41 0 4096" -c "write -P 0x42 2097152 512" \
    -c "write -P 0x43 4194304 65536" dyn-data.vhd >/dev/null
qemu-img create -q -f vpc -o subformat=fixed fixed-data.vhd 1M
# Files shorter than two footers: the footer alone, and the footer after
# the first 356 bytes of its copy (the VHD mutator once copied the footer
# onto an overlapping copy at offset 0 in these).
tail -c 512 dyn-1m.vhd >footer-only.vhd
{ head -c 356 dyn-1m.vhd; tail -c 512 dyn-1m.vhd; } >footer-short.vhd
qemu-io -f vpc -c "write -P 0x44 512 1024" fixed-data.vhd >/dev/null
tool=${VDK_BUILD:-}/tests/unit/vhd/vhd-tool
if [ -n "${VDK_BUILD:-}" ] && [ -x "$tool" ]; then
    "$tool" create parent.tmp size=3M
    "$tool" write parent.tmp 0 4096 0x45
    "$tool" create diff.vhd backing_file=parent.tmp,backing_fmt=vpc
    "$tool" write diff.vhd 1024 1024 0x46
    "$tool" create diff-partial.vhd backing_file=parent.tmp
    NO_BACKING=1 "$tool" write diff-partial.vhd 2098176 1536 0x47
    mv parent.tmp parent.vhd
fi
# Damage the structure-aware mutator (fuzz-vhd-mutator.h) makes, kept as
# seeds: footers that differ (each with a valid checksum), two BAT entries
# naming one block, a BAT entry pointing at the BAT itself, and a sector
# bitmap emptied under data.  qemu's layout: header at 512, BAT at 1536.
/usr/bin/python3 - dyn-data.vhd <<'PYEOF'
import sys
src = open(sys.argv[1], "rb").read()
def seal(b, at, ln, field):
    b[at + field:at + field + 4] = bytes(4)
    b[at + field:at + field + 4] = (~sum(b[at:at + ln]) & 0xffffffff).to_bytes(4, "big")
def make(name, fn):
    b = bytearray(src)
    fn(b)
    open(name, "wb").write(b)
bat = 1536
def differ(b):
    b[24:28] = (int.from_bytes(b[24:28], "big") ^ 0x5a5a).to_bytes(4, "big")
    seal(b, 0, 512, 64)
make("footers-differ.vhd", differ)
make("bat-shared.vhd", lambda b: b.__setitem__(slice(bat + 8, bat + 12), b[bat:bat + 4]))
make("bat-on-bat.vhd", lambda b: b.__setitem__(slice(bat, bat + 4), (bat // 512).to_bytes(4, "big")))
def bitmap(b):
    blk = int.from_bytes(b[bat:bat + 4], "big") * 512
    b[blk:blk + 512] = bytes(512)
make("bitmap-empty.vhd", bitmap)
PYEOF
