#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vmdk-desc: descriptors qemu-img writes now for every
# subformat and option, with and without a parent, plus hand-written ones
# for the createTypes and extent kinds qemu-img cannot create.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
cd "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
i=0
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized; do
    for o in "" adapter_type=lsilogic compat6=on hwversion=7,toolsversion=1; do
        qemu-img create -q -f vmdk -o "subformat=$sub${o:+,$o}" "$tmp/d.vmdk" 5G
        if [ "$(head -c 4 "$tmp/d.vmdk")" = KDMV ]; then
            dd if="$tmp/d.vmdk" bs=512 skip=1 count=20 status=none | tr -d '\0' > "desc-$i.txt"
        else
            cp "$tmp/d.vmdk" "desc-$i.txt"
        fi
        rm -f "$tmp"/d*
        i=$((i + 1))
    done
done
qemu-img create -q -f vmdk "$tmp/p.vmdk" 1M
qemu-img create -q -f vmdk -b "$tmp/p.vmdk" -F vmdk "$tmp/c.vmdk"
dd if="$tmp/c.vmdk" bs=512 skip=1 count=20 status=none | tr -d '\0' > desc-child.txt
printf '# Disk DescriptorFile\r\nversion=1\r\nencoding="UTF-8"\r\nCID=fffffffe\r\nparentCID=ffffffff\r\nisNativeSnapshot="no"\r\ncreateType="vmfs"\r\n\r\nRW 2048 VMFS "a-flat.vmdk"\r\nRDONLY 2048 FLAT "b.img" 7\r\nNOACCESS 1 ZERO\r\nRW 8 VMFSSPARSE "c.vmdk"\r\nRW 8 SESPARSE "d.vmdk"\r\n\r\nddb.adapterType = "lsilogic"\r\nddb.uuid = "60 00 C2 9a"\r\n' > desc-vmfs.txt
# What the structure-aware mutator (fuzz-text-mutator.h) makes: lines at
# the line bound (one under, at, one over), a key twice, an extent line
# repeated past the extent bound, quotes left open, a line without '='.
long() { head -c "$1" /dev/zero | tr '\0' "$2"; }
for l in 4095 4096 4097; do
    printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 8 FLAT "%s" 0\n' \
        "$(long $((l - 14)) f)" > "desc-line-$l.txt"
done
printf '# Disk DescriptorFile\nversion=1\nversion=3\nCID=fffffffe\nCID=1\ncreateType="monolithicFlat"\ncreateType="vmfs"\nRW 8 FLAT "a" 0\n' > desc-twice.txt
{ printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n'
  for e in $(seq 1 4097); do printf 'RW 1 ZERO\n'; done; } > desc-extents-over.txt
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\ncreateType="monolithicFlat\nRW 8 FLAT "a 0\nparentFileNameHint="x\nddb.adapterType = "ide\n' > desc-open-quotes.txt
printf '# Disk DescriptorFile\nversion\nCID\n=fffffffe\ncreateType monolithicFlat\nRW\nRW 8\nRW 8 FLAT\n' > desc-no-equals.txt
