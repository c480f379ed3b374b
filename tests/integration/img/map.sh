#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img map beside qemu-img map on sparse raw images with several
# data/hole patterns, and qcow2 with each preallocation mode: JSON lines
# and the human table must be identical.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

# name size qemu-io commands...
mk() {
    local name=$1 size=$2; shift 2
    qimg create -q -f raw "$name" "$size"
    local args=()
    for c in "$@"; do args+=(-c "$c"); done
    [ ${#args[@]} -eq 0 ] || retry_setup qemu-io -f raw "${args[@]}" "$name" >/dev/null
}
mk empty.raw 8M
mk head.raw 8M 'write -P 1 0 64k'
mk tail.raw 8M 'write -P 1 7M 1M'
mk middle.raw 8M 'write -P 1 3M 128k'
mk many.raw 8M 'write -P 1 0 4k' 'write -P 2 64k 4k' 'write -P 3 1M 512k' \
    'write -P 0 2M 64k' 'write -P 4 6M 4k' 'write -P 5 8188k 4k'
mk zeros.raw 4M 'write -z 1M 1M' 'write -P 0 2M 1M'
mk odd.raw 5M 'write -P 1 12k 4k' 'write -P 1 16k 4k' 'write -P 1 24k 8k'
qimg create -q -f raw -o preallocation=full full.raw 2M
qimg create -q -f raw -o preallocation=falloc falloc.raw 2M
dd if=/dev/urandom of=dense.raw bs=64k count=16 status=none
truncate -s 0 zero.raw
# a hole punched in the middle of written data
mk punched.raw 4M 'write -P 6 0 4M'
fallocate -p -o 1M -l 1M punched.raw

for img in empty.raw head.raw tail.raw middle.raw many.raw zeros.raw odd.raw \
           full.raw falloc.raw dense.raw zero.raw punched.raw; do
    same_output "map json $img" map -f raw --output=json "$img"
    same_output "map human $img" map -f raw "$img"
    same_output "map probed $img" map --output=json "$img"
done
for range in "--start-offset=100" "--max-length=5000000" \
             "--start-offset=65535 --max-length=1048577" "--start-offset=8M" \
             "--start-offset=1M --max-length=0" "--start-offset=9M"; do
    # shellcheck disable=SC2086
    same_output "map $range" map -f raw --output=json $range many.raw
    # shellcheck disable=SC2086
    same_output "map human $range" map -f raw $range many.raw
done
same_output "map --image-opts" map --output=json --image-opts driver=raw,file.filename=many.raw

# qcow2 with each preallocation mode: only preallocated metadata makes
# qemu ask the file for holes under data clusters (zero: true there); a
# fallocated image's unwritten clusters stay "zero": false.
for p in off metadata falloc full; do
    qimg create -q -f qcow2 -o preallocation=$p "pre-$p.qcow2" 8M
    retry_setup qemu-io -c 'write -P 7 1M 64k' "pre-$p.qcow2" >/dev/null
    same_output "map qcow2 preallocation=$p" map --output=json "pre-$p.qcow2"
    same_output "map human qcow2 preallocation=$p" map "pre-$p.qcow2"
done
echo ok
