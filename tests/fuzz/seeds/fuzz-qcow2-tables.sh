#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-tables: small whole qcow2 images made now by
# qemu-img and qemu-io (data, zero and discarded clusters, compressed
# clusters, subclusters, snapshots, refcount widths), and two with damaged
# refcount structures for the repair (rebuild) path.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
io() { qemu-io -f qcow2 -d unmap "$@" >/dev/null; }
mk() { # qemu-img create options...
    n=$((n + 1))
    (cd "$tmp" && qemu-img create -q -f qcow2 "$@" img 256k)
    io -c "write -P 0x11 0 3k" -c "write -z 64k 4k" -c "write -P 0x22 130k 9k" \
        -c "discard 128k 4k" "$tmp/img"
    cp "$tmp/img" "$out/img-$n"
    rm -f "$tmp/img"
}
mk -o cluster_size=512
mk -o cluster_size=4k,refcount_bits=1
mk -o cluster_size=4k,refcount_bits=64,compat=1.1
mk -o cluster_size=4k,compat=0.10
mk -o cluster_size=16k,extended_l2=on
mk -o cluster_size=4k,lazy_refcounts=on
head -c 262144 /dev/zero | tr '\0' 'q' >"$tmp/src.raw"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4k "$tmp/src.raw" "$out/compressed-zlib"
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4k,compression_type=zstd \
    "$tmp/src.raw" "$out/compressed-zstd"
qemu-img create -q -f qcow2 -o cluster_size=4k "$tmp/snap" 256k
io -c "write -P 0x33 0 8k" "$tmp/snap"
qemu-img snapshot -c s1 "$tmp/snap"
io -c "write -P 0x44 4k 8k" "$tmp/snap"
cp "$tmp/snap" "$out/snapshot"
# Damaged refcount structures (qemu-img's layout: table at cluster 1, first
# block at cluster 2): a zeroed block, and a table entry naming a data cluster.
cp "$out/img-1" "$out/rb-zeroed"
dd if=/dev/zero of="$out/rb-zeroed" bs=512 seek=2 count=1 conv=notrunc status=none
cp "$out/snapshot" "$out/rb-on-data"
printf '\x00\x00\x00\x00\x00\x00\x50\x00' |
    dd of="$out/rb-on-data" bs=1 seek=4096 conv=notrunc status=none
