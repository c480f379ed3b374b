#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-tables: small whole qcow2 images made now by
# qemu-img and qemu-io (data, zero and discarded clusters, compressed
# clusters, subclusters, snapshots, refcount widths), and two with damaged
# refcount structures for the repair (rebuild) path, and the table damage
# of the structure-aware mutator (at the end).
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
# Table damage the structure-aware mutator (fuzz-qcow2-mutator.h) makes,
# kept as seeds so the suite replays it: a v3 zero cluster in an image
# relabelled v2 (the flag is reserved there), an L2 reserved bit, an L1
# entry naming the refcount table, two L2 entries sharing one cluster, an
# extended L2 bitmap with both bits of a subcluster set; and compressed
# descriptors claiming every sector or none, past the end, on the header,
# with COPIED set or COMPRESSED cleared, a data cluster's entry made one,
# and their streams with a flipped bit or cut short.
qpatch() { # IN OUT WHAT
    /usr/bin/python3 - "$@" <<'PYEOF'
import struct, sys
src, dst, what = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
be = lambda o, n: int.from_bytes(b[o:o + n], "big")
def put(o, n, v): b[o:o + n] = v.to_bytes(n, "big")
l1 = be(40, 8)
l2 = be(l1, 8) & 0x00fffffffffffe00
if what == "v2-zero":
    put(4, 4, 2)
elif what == "l2-reserved":
    put(l2, 8, be(l2, 8) | 2)
elif what == "l1-on-refcount-table":
    put(l1, 8, be(48, 8) | 1 << 63)
elif what == "l2-shared":
    put(l2 + 8, 8, be(l2, 8))
elif what == "ext-l2-both":
    put(l2 + 8, 8, be(l2 + 8, 8) | 1 | 1 << 32)
else:
    # compressed descriptors (4 KiB clusters: offset in bits 0-57, extra
    # sectors in 58-61) and the streams they name
    x = 62 - (be(20, 4) - 8)
    e = be(l2, 8)
    off, ns = e & ((1 << x) - 1), (e >> x) & ((1 << (62 - x)) - 1)
    desc = lambda o, n: 1 << 62 | (n & ((1 << (62 - x)) - 1)) << x | o
    if what == "c-sectors-max":
        put(l2, 8, desc(off, (1 << (62 - x)) - 1))
    elif what == "c-sectors-0":
        put(l2, 8, desc(off, 0))
    elif what == "c-past-eof":
        put(l2, 8, desc(len(b) - 100, ns))
    elif what == "c-on-header":
        put(l2, 8, desc(0, ns))
    elif what == "c-copied":
        put(l2, 8, e | 1 << 63)
    elif what == "c-flag-cleared":
        put(l2, 8, e & ~(1 << 62))
    elif what == "c-stream-bit":
        b[off + 5] ^= 0x10
    elif what == "c-stream-cut":
        end = min(off + (ns + 1) * 512 - (off & 511), len(b))
        b[off + 8:end] = bytes(max(0, end - off - 8))
    elif what == "c-from-data":
        # a data cluster's entry turned into a descriptor of its raw bytes
        l2d = be(be(40, 8), 8) & 0x00fffffffffffe00
        put(l2d, 8, desc(be(l2d, 8) & 0x00fffffffffffe00, 7))
open(dst, "wb").write(b)
PYEOF
}
qpatch "$out/img-6" "$out/v2-zero" v2-zero
qpatch "$out/img-2" "$out/l2-reserved" l2-reserved
qpatch "$out/img-2" "$out/l1-on-refcount-table" l1-on-refcount-table
qpatch "$out/img-2" "$out/l2-shared" l2-shared
qpatch "$out/img-5" "$out/ext-l2-both" ext-l2-both
for c in c-sectors-max c-sectors-0 c-past-eof c-on-header c-copied c-flag-cleared \
    c-stream-bit c-stream-cut; do
    qpatch "$out/compressed-zlib" "$out/$c" "$c"
done
qpatch "$out/compressed-zstd" "$out/c-zstd-stream-bit" c-stream-bit
qpatch "$out/img-2" "$out/c-from-data" c-from-data
