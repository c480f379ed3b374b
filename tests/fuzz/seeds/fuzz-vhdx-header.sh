#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vhdx-header: that structure cut out of VHDX images made now.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
. "$(dirname "$0")/fuzz-vhdx-common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
vhdx_images "$tmp"
for f in "$tmp"/*.vhdx; do
    cut_seed "$f" 65536 262144 "$out/$(basename "$f" .vhdx).bin"
done
# What the structure-aware mutator (fuzz-vhdx-mutator.h) makes, from the
# dynamic image's cut, checksums resealed: equal sequence numbers, a log
# GUID set with no log, the log placed on the headers, a region table
# with two BAT entries and one with an unknown required region.
/usr/bin/python3 - "$out/dyn.bin" "$out" <<'PYEOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
img = bytearray(open(src, 'rb').read())
def entry(i):
    for _ in range(8):
        i = (i >> 1) ^ (0x82f63b78 & -(i & 1))
    return i
TABLE = [entry(i) for i in range(256)]
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c = (c >> 8) ^ TABLE[(c ^ x) & 0xff]
    return c ^ 0xffffffff
def seal(b, at, n):
    struct.pack_into('<I', b, at + 4, 0)
    struct.pack_into('<I', b, at + 4, crc32c(b[at:at + n]))
def seed(name, *edits):
    b = bytearray(img)
    for fmt, off, v in edits:
        if isinstance(v, bytes):
            b[off:off + len(v)] = v
        else:
            struct.pack_into('<' + fmt, b, off, v)
    for at, n in ((0, 4096), (65536, 4096), (131072, 65536), (196608, 65536)):
        seal(b, at, n)
    open(f'{out}/dmg-{name}.bin', 'wb').write(b)
seq = struct.unpack_from('<Q', img, 8)[0]
seed('same-sequence', ('Q', 65536 + 8, seq))
seed('log-guid-no-log', ('s', 48, b'\x01' * 16), ('s', 65536 + 48, b'\x01' * 16))
seed('log-on-headers', ('Q', 72, 65536), ('Q', 65536 + 72, 65536))
e0 = 131072 + 16
seed('two-bats', ('s', e0 + 32, bytes(img[e0:e0 + 32])))
seed('unknown-required', ('s', e0, b'\xaa' * 16), ('I', e0 + 28, 1))
seed('region-count-2048', ('I', 131072 + 8, 2048))
PYEOF
