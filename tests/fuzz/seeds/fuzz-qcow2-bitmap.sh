#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-bitmap: small qcow2 images with persistent bitmaps
# made now by qemu-img and qemu-io: several granularities, enabled and
# disabled, dirty data in some clusters, an in-use bitmap (qemu-io killed
# while it held the image), a bitmap with an all-ones table entry, and an
# extension left stale by a clear autoclear bit.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
io() { qemu-io -f qcow2 "$@" >/dev/null; }
mk() { # cluster size, then bitmap --add argument lists separated by ';'
    n=$((n + 1))
    local img=$tmp/img cs=$1
    qemu-img create -q -f qcow2 -o cluster_size="$cs" "$img" 256k
    shift
    IFS=';' read -ra adds <<<"$*"
    for a in "${adds[@]}"; do
        # shellcheck disable=SC2086
        qemu-img bitmap --add $a "$img" 2>/dev/null || true
    done
    io -c "write -P 0x11 0 3k" -c "write -z 64k 4k" -c "write -P 0x22 130k 9k" "$img"
    cp "$img" "$out/bm-$n"
    rm -f "$img"
}
mk 512 "b0"
mk 4k "-g 512 fine;-g 64k coarse;--disable off"
mk 4k "-g 1k a;-g 2k b;-g 4k c;-g 8k d"
mk 64k "b0;-g 16k --disable b1"
# In use: qemu-io dies with the image open read-write.
qemu-img create -q -f qcow2 -o cluster_size=4k "$tmp/use" 256k
qemu-img bitmap --add -g 4k "$tmp/use" crashed
qemu-img bitmap --add --disable "$tmp/use" kept
qemu-io -f qcow2 -c "write 8k 4k" -c "sigraise 9" "$tmp/use" >/dev/null 2>&1 || true
cp "$tmp/use" "$out/bm-in-use"
# Stale extension: the autoclear bit cleared.
cp "$out/bm-2" "$out/bm-stale"
printf '\0' | dd of="$out/bm-stale" bs=1 seek=95 conv=notrunc status=none
