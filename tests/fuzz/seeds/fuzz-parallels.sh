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
