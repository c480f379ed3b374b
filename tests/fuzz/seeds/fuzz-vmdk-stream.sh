#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vmdk-stream: streamOptimized files of compressible and
# random data from qemu-img (preallocated tables) and vdk (footer).
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{ head -c 100000 /dev/urandom; yes grain | head -c 200000; } > "$tmp/r.raw"
truncate -s 512K "$tmp/r.raw"
qemu-img convert -O vmdk -o subformat=streamOptimized "$tmp/r.raw" qstream.vmdk
img=${VDK_BUILD:-}/img-tool/vdk-img
if [ -n "${VDK_BUILD:-}" ] && [ -x "$img" ]; then
    "$img" convert -O vmdk -o subformat=streamOptimized "$tmp/r.raw" vstream.vmdk
fi
