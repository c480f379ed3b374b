#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-parallels: small images made now by qemu-img and qemu-io.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
qemu-img create -q -f parallels -o cluster_size=4k small.img 64k
qemu-img create -q -f parallels -o cluster_size=64k data.img 1M
qemu-io -f parallels -c "write -P 0x41 0 4096" -c "write -P 0x42 512k 512" data.img >/dev/null
qemu-img create -q -f parallels -o cluster_size=4k inuse.img 32k
printf 'Ynot' | dd of=inuse.img bs=1 seek=44 conv=notrunc status=none
# BAT damage the structure-aware mutator makes, kept as seeds: two entries
# sharing a cluster (twice: the same entry, and the cluster number 1 where
# cluster 0 lives), an entry past the end of the file, the largest entry.
/usr/bin/python3 - data.img <<'PYEOF'
import sys
src = open(sys.argv[1], "rb").read()
def make(name, entry, value):
    b = bytearray(src)
    b[64 + 4 * entry:68 + 4 * entry] = value.to_bytes(4, "little")
    open(name, "wb").write(b)
make("bat-shared.img", 8, int.from_bytes(src[64:68], "little"))
make("bat-outside.img", 1, len(src) // 512 + 128)
make("bat-first-cluster.img", 8, 1)
make("bat-largest.img", 2, 0xffffffff)
# A virtual size of 2 TiB over a BAT of a few entries (block status once
# walked every cluster past the BAT: a campaign timeout).
b = bytearray(open("small.img", "rb").read())
b[36:44] = (0xffffffff).to_bytes(8, "little")
open("huge-past-bat.img", "wb").write(b)
# Clusters of 1 GiB (tracks 2097280; vdk and qemu allow up to 4186127)
# over a 1 MiB disk: the second cluster lies 1 GiB into the file (the
# campaign re-run's OOM; the harness now caps its memory file at 256 MiB
# like a file-size limit).
b = bytearray(src)
b[28:32] = (2097280).to_bytes(4, "little")
b[64:68] = (1).to_bytes(4, "little")
open("cluster-1g.img", "wb").write(b)
PYEOF
