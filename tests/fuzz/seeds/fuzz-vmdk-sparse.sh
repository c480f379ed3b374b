#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vmdk-sparse: small sparse extents made now by qemu-img
# (monolithicSparse, zeroed grains, a split extent, streamOptimized with
# preallocated tables) and by vdk (streamOptimized with footer), with data
# written by qemu-io; seSparse extents from the tests' generator.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
qemu-img create -q -f vmdk sparse.vmdk 2M
qemu-img create -q -f vmdk data.vmdk 3M
qemu-io -f vmdk -c "write -P 0x41 0 4096" -c "write -P 0x42 1048576 70000" data.vmdk >/dev/null
qemu-img create -q -f vmdk -o zeroed_grain=on zg.vmdk 2M
qemu-io -f vmdk -c "write -P 0x43 65536 65536" -c "write -z 0 65536" zg.vmdk >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse "$tmp/s.vmdk" 1M
cp "$tmp/s-s001.vmdk" split-extent.vmdk
head -c 200000 /dev/urandom > "$tmp/r.raw"
truncate -s 1M "$tmp/r.raw"
qemu-img convert -O vmdk -o subformat=streamOptimized "$tmp/r.raw" qstream.vmdk
img=${VDK_BUILD:-}/img-tool/vdk-img
if [ -n "${VDK_BUILD:-}" ] && [ -x "$img" ]; then
    "$img" convert -O vmdk -o subformat=streamOptimized "$tmp/r.raw" vstream.vmdk
    # From the 10-minute campaign: an empty stream whose header and footer
    # put the first grain 512 MiB past the end (a write went there).
    "$img" create -q -f vmdk -o subformat=streamOptimized vstream-far.vmdk 1M
    /usr/bin/python3 - vstream-far.vmdk <<'PYEOF'
import os, struct, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    for at in (64, os.path.getsize(p) - 1024 + 64):
        f.seek(at)
        f.write(struct.pack("<Q", 1 << 20))
PYEOF
fi
# seSparse: one table and two (the first without a table); the extent is
# the seed, its descriptor is the fuzz target's own.
mk=${VDK_SRC:?}/tests/integration/vmdk/mk-sesparse.py
/usr/bin/python3 "$mk" "$tmp/se1.vmdk" 2048 --seed 1 --compact >/dev/null
cp "$tmp/se1-sesparse.vmdk" sesparse-small.vmdk
/usr/bin/python3 "$mk" "$tmp/se2.vmdk" 40960 --seed 2 --compact >/dev/null
cp "$tmp/se2-sesparse.vmdk" sesparse-two.vmdk
# Grain-table damage the structure-aware mutator makes, kept as seeds: two
# entries naming one grain, an entry pointing into the grain directory, and
# the redundant directory naming other tables than the primary one.
/usr/bin/python3 - data.vmdk <<'PYEOF'
import sys
src = open(sys.argv[1], "rb").read()
le = lambda b, o, n: int.from_bytes(b[o:o + n], "little")
gd, rgd = le(src, 56, 8) * 512, le(src, 48, 8) * 512
gt = le(src, gd, 4) * 512
def make(name, at, value):
    b = bytearray(src)
    b[at:at + 4] = value.to_bytes(4, "little")
    open(name, "wb").write(b)
make("gt-shared.vmdk", gt + 4 * 20, le(src, gt, 4))
make("gt-on-gd.vmdk", gt, gd // 512)
make("rgd-differs.vmdk", rgd, le(src, rgd, 4) + 1)
PYEOF
