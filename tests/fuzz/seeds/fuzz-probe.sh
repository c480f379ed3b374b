#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-probe: small images of every format qemu-img can make,
# with some data, so probing and each driver's open see real headers.
# LUKS is cut to its first 64 KiB (the header; the key material after it
# is large) to keep the corpus small.
#   fuzz-probe.sh OUTDIR
set -eu
. "$(dirname "$0")/seed-lib.sh"
mkdir -p "$1"
out=$(cd "$1" && pwd)
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
q() { qemu-img "$@" >/dev/null; }
io() { qemu-io "$@" >/dev/null; }

# raw: empty, one sector of text, a small image with data
: >"$out/raw-empty"
printf 'not an image header, just bytes\n' >"$out/raw-text"
q create -f raw r.raw 64k
io -f raw -c 'write -P 0xab 4k 4k' r.raw
cp r.raw "$out/raw-64k"

# qcow2: v2 and v3, default (64k, the common case) and small clusters, data, zero and
# compressed clusters, a backing file with and without format, extended
# L2, a snapshot
q create -f qcow2 -o compat=0.10 v2.qcow2 1M
io -c 'write -P 1 0 64k' v2.qcow2
cp v2.qcow2 "$out/qcow2-v2"
q create -f qcow2 -o cluster_size=512 c512.qcow2 256k
io -c 'write -P 2 1k 3k' -c 'write -z 8k 4k' c512.qcow2
cp c512.qcow2 "$out/qcow2-c512"
q create -f qcow2 -o cluster_size=4k,lazy_refcounts=on,refcount_bits=1 c4k.qcow2 1M
io -c 'write -P 3 0 12k' c4k.qcow2
cp c4k.qcow2 "$out/qcow2-c4k-refbits1"
q create -f qcow2 -o cluster_size=4k base.qcow2 1M
io -c 'write -P 4 0 4k' base.qcow2
q create -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 top.qcow2
io -c 'write -P 5 64k 4k' top.qcow2
cp top.qcow2 "$out/qcow2-backing-fmt"
# qemu-img 7.2 no longer writes a backing file without its format; older
# ones did.  Make one by ending the header extensions where the backing
# format extension (magic 0xe2792aca) starts.
cp top.qcow2 nofmt.qcow2
off=$(LC_ALL=C grep -obUaP '\xe2\x79\x2a\xca' nofmt.qcow2 | head -1 | cut -d: -f1)
printf '\0\0\0\0\0\0\0\0' | dd of=nofmt.qcow2 bs=1 seek="$off" conv=notrunc status=none
cp nofmt.qcow2 "$out/qcow2-backing-nofmt"
q convert -c -O qcow2 -o cluster_size=4k r.raw comp.qcow2
cp comp.qcow2 "$out/qcow2-compressed-zlib"
if q convert -c -O qcow2 -o compression_type=zstd,cluster_size=4k r.raw zstd.qcow2 2>/dev/null; then
    cp zstd.qcow2 "$out/qcow2-compressed-zstd"
fi
q create -f qcow2 -o extended_l2=on,cluster_size=16k el2.qcow2 1M
io -c 'write -P 6 2k 2k' el2.qcow2
cp el2.qcow2 "$out/qcow2-extended-l2"
q create -f qcow2 -o cluster_size=4k snap.qcow2 256k
io -c 'write -P 7 0 4k' snap.qcow2
q snapshot -c s1 snap.qcow2
io -c 'write -P 8 0 4k' snap.qcow2
cp snap.qcow2 "$out/qcow2-snapshot"

# VHD (qemu's "vpc"): dynamic (no data: a written block is 2 MiB), fixed
q create -f vpc v.vhd 8M
cp v.vhd "$out/vhd-dynamic"
q create -f vpc -o subformat=fixed vf.vhd 256k
cp vf.vhd "$out/vhd-fixed"

# LUKS: header only
seed_retry q create -f luks --object secret,id=s0,data=fuzz -o key-secret=s0,iter-time=10 l.luks 1M
head -c 65536 l.luks >"$out/luks-header"

# Formats vdk has no driver for: probing refuses them by name (or, once a
# driver is in the table, opens them with it)
q create -f vdi vdi.img 1M
cp vdi.img "$out/other-vdi"
q create -f vmdk vmdk.img 1M
head -c 65536 vmdk.img >"$out/other-vmdk"
q create -f vmdk -o subformat=monolithicFlat flat.vmdk 1M
cp flat.vmdk "$out/other-vmdk-descriptor"
q create -f qed -o cluster_size=4k,table_size=1 qed.img 1M
cp qed.img "$out/other-qed"
q create -f qcow qcow.img 1M
cp qcow.img "$out/other-qcow1"
q create -f parallels par.img 1M
head -c 4096 par.img >"$out/other-parallels"
q create -f vhdx vhdx.img 1M
head -c 65536 vhdx.img >"$out/other-vhdx"
# Damaged: qcow2 version 4, a LUKS version 3, a truncated qcow2 magic
cp v2.qcow2 v4.qcow2
printf '\0\0\0\4' | dd of=v4.qcow2 bs=1 seek=4 conv=notrunc status=none
cp v4.qcow2 "$out/qcow2-version4"
head -c 4096 l.luks >l3.luks
printf '\0\3' | dd of=l3.luks bs=1 seek=6 conv=notrunc status=none
cp l3.luks "$out/luks-version3"
printf 'QFI\xfb\0' >"$out/qcow2-truncated"
