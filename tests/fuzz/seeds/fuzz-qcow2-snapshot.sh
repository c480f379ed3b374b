#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-snapshot: small qcow2 images with internal
# snapshots, made now by qemu-img and qemu-io (v2 and v3, refcount widths,
# subclusters, compressed clusters, several snapshots, a resized image).
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
io() { qemu-io -f qcow2 "$@" >/dev/null; }
mk() { # qemu-img create options...
    n=$((n + 1))
    (cd "$tmp" && qemu-img create -q -f qcow2 "$@" img 256k)
    io -c "write -P 0x11 0 8k" -c "write -c -P 0x12 64k 16k" "$tmp/img"
    qemu-img snapshot -c one "$tmp/img"
    io -c "write -P 0x22 4k 8k" -c "write -z 128k 4k" "$tmp/img"
    qemu-img snapshot -c two "$tmp/img"
    io -c "write -P 0x33 0 4k" "$tmp/img"
    cp "$tmp/img" "$out/img-$n"
    rm -f "$tmp/img"
}
mk -o cluster_size=4k
mk -o cluster_size=512,compat=0.10
mk -o cluster_size=4k,refcount_bits=64
mk -o cluster_size=4k,refcount_bits=8
mk -o cluster_size=16k,extended_l2=on
# A snapshot taken before a resize, and one deleted again.
qemu-img create -q -f qcow2 -o cluster_size=4k "$tmp/r" 128k
io -c "write -P 0x44 0 128k" "$tmp/r"
qemu-img snapshot -c small "$tmp/r"
qemu-img resize -q "$tmp/r" 256k
qemu-img snapshot -c big "$tmp/r"
qemu-img snapshot -c gone "$tmp/r"
qemu-img snapshot -d gone "$tmp/r"
cp "$tmp/r" "$out/resized"
