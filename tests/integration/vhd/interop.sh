#!/bin/bash
# SPDX-License-Identifier: MIT
# VHD interop with qemu-img, both ways: fixed and dynamic, sizes 64M, 1G
# (sparse), 100000000 bytes, with and without force_size.
#  - vdk creates the same virtual size as qemu-img for the same request;
#  - vdk reads qemu's images byte-exact (qemu-img convert -O raw, cmp);
#  - qemu reads vdk's images byte-exact (qemu-img compare, convert + cmp).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"

# Pattern writes at the start, across the first block boundary and at the
# end of the disk, by qemu-io into qemu's image and by vhd-tool into ours.
qemu_writes() {
    local end=$(( $2 - 4096 ))
    retry_setup qemu-io -f vpc -c "write -P 0x5a 0 4096" -c "write -P 0xa5 2096640 8192" \
        -c "write -P 0x3c $end 4096" "$1" >/dev/null
}
vdk_writes() {
    local end=$(( $2 - 4096 ))
    "$VT" write "$1" 0 4096 0x5a
    "$VT" write "$1" 2096640 8192 0xa5
    "$VT" write "$1" "$end" 4096 0x3c
}

for sub in dynamic fixed; do
    for size in 64M 1G 100000000; do
        for force in off on; do
            o="subformat=$sub,force_size=$force"
            qemu-img create -q -f vpc -o "$o" q.vhd "$size"
            "$VT" create v.vhd "$o,size=$size"
            qs=$(vsize q.vhd) vs=$(vsize v.vhd)
            [ "$qs" = "$vs" ] || fail "$o size=$size: qemu $qs bytes, vdk $vs"
            "$VT" info v.vhd | grep -qx "virtual-size $qs" || fail "vdk reads its own size wrong"

            qemu_writes q.vhd "$qs"
            qemu-img convert -f vpc -O raw q.vhd q.raw
            cmp <("$VT" cat q.vhd) q.raw || fail "$o size=$size: vdk misreads qemu's image"

            vdk_writes v.vhd "$vs"
            qemu-img compare -q -f vpc -F vpc v.vhd q.vhd ||
                fail "$o size=$size: qemu-img compare differs"
            qemu-img convert -f vpc -O raw v.vhd v.raw
            same_file v.raw q.raw
            cmp <("$VT" cat v.vhd) v.raw || fail "$o size=$size: vdk reads back wrong"
            rm -f q.vhd v.vhd q.raw v.raw
        done
    done
done

# Whole-image data through vdk into a dynamic image: qemu sees every byte.
head -c 5M /dev/urandom > src.raw
truncate -s 12M src.raw
dd if=/dev/urandom of=src.raw bs=64k seek=150 count=3 conv=notrunc status=none
"$VT" create d.vhd size=12M
"$VT" import src.raw d.vhd
# (the image is a little larger than the raw file: compare checks the
# extra tail reads as zeros)
qemu-img compare -q -f vpc -F raw d.vhd src.raw || fail "import: qemu reads different data"

# qemu-written dynamic data (convert) reads byte-exact through vdk.
qemu-img convert -f raw -O vpc src.raw qc.vhd
qemu-img convert -f vpc -O raw qc.vhd qc.raw
cmp <("$VT" cat qc.vhd) qc.raw || fail "vdk misreads a qemu-img convert output"

# Creator rules: with current_size != CHS size, vdk picks the same size as
# qemu for each creator application qemu knows, and for an unknown one.
qemu-img create -q -f vpc cr.vhd 100000000
for app in 61626364 76706320 71656d75 71656d32 77696e20 64327620 43545853 74617000; do
    patch_footer cr.vhd 48 0000000005f5e200          # 100000256 bytes
    patch_footer cr.vhd 28 "$app"
    v=$("$VT" info cr.vhd | sed -n 's/^virtual-size //p')
    [ "$v" = "$(vsize cr.vhd)" ] || fail "creator $app: vdk $v, qemu $(vsize cr.vhd)"
done

# Azure alignment: a whole number of MiB recorded exactly; qemu agrees.
"$VT" create az.vhd size=100000000,subformat=fixed,azure_align=on
[ "$(vsize az.vhd)" = 100663296 ] || fail "azure_align: size $(vsize az.vhd)"
[ "$(stat -c %s az.vhd)" = $((100663296 + 512)) ] || fail "azure_align: file size"
echo "vhd interop ok"
