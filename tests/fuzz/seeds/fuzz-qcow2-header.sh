#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-header: qcow2 headers made now by qemu-img, over
# versions, cluster sizes, refcount widths and header extensions (backing
# format, feature table, data file, bitmaps); only the header cluster.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
mk() { # qemu-img create options...
    n=$((n + 1))
    (cd "$tmp" && qemu-img create -q -f qcow2 "$@" img 1M)
    head -c 4096 "$tmp/img" >"$out/hdr-$n"
    rm -f "$tmp/img"
}
mk -o compat=0.10
mk -o compat=1.1
mk -o cluster_size=512,refcount_bits=1
mk -o cluster_size=2M,refcount_bits=64
mk -o extended_l2=on,compression_type=zstd,lazy_refcounts=on
mk -o data_file=data.raw,data_file_raw=on
qemu-img create -q -f raw "$tmp/base.raw" 1M
mk -b base.raw -F raw
(cd "$tmp" && qemu-img create -q -f qcow2 img 1M && qemu-img bitmap --add img bm0)
head -c 4096 "$tmp/img" >"$out/hdr-bitmap"
