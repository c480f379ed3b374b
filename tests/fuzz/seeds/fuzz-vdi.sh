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
