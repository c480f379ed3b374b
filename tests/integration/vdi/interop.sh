#!/bin/bash
# SPDX-License-Identifier: MIT
# VDI interop with qemu-img and qemu-io, both ways, dynamic and static:
#  - vdk creates the same header bytes as qemu-img (UUIDs aside);
#  - vdk reads qemu's images byte-exact, qemu reads vdk's byte-exact and
#    finds them clean, and qemu-io still writes into them;
#  - info, map, measure, compare agree with qemu-img.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=vdi

# Header bytes: equal to qemu-img's except the two UUIDs (0x188..0x1a7).
for o in static=off static=on; do
    for size in 1M 64M 1000000 3G; do
        [ "$o" = static=on ] && [ "$size" = 3G ] && continue
        qemu-img create -q -f vdi -o "$o" q.vdi "$size"
        "$VDK_IMG" create -q -f vdi -o "$o" v.vdi "$size"
        [ "$(stat -c %s q.vdi)" = "$(stat -c %s v.vdi)" ] || fail "$o $size: file sizes differ"
        cmp -l q.vdi v.vdi | awk '$1 < 393 || $1 > 424 { bad = 1 } END { exit bad }' ||
            fail "$o $size: header differs from qemu-img's beyond the UUIDs"
        [ "$(vsize vdi q.vdi)" = "$(vsize vdi v.vdi)" ] || fail "$o $size: size differs"
        rm -f q.vdi v.vdi
    done
done

pattern_raw src.raw 10M
for o in static=off static=on; do
    # vdk writes, qemu reads
    "$VDK_IMG" convert -f raw -O vdi -o "$o" src.raw v.vdi
    qemu-img compare -q -f raw -F vdi src.raw v.vdi || fail "$o: qemu reads vdk's convert wrong"
    qemu-img check -q -f vdi v.vdi || fail "$o: qemu-img check finds errors in vdk's image"
    "$VT" write v.vdi 4194304 70000 0x5a       # unaligned, inside an unallocated block
    "$VT" write v.vdi 1048064 1024 0x3c        # across a block boundary
    "$VT" zero v.vdi 0 4096
    qemu-img convert -f vdi -O raw v.vdi v.raw
    cmp <("$VT" cat v.vdi) v.raw || fail "$o: qemu and vdk read vdk's writes differently"
    qemu-img check -q -f vdi v.vdi || fail "$o: not clean after vdk's writes"
    qemu-io -f vdi -c "write -P 0x77 8M 1M" v.vdi >/dev/null || fail "$o: qemu-io cannot write"
    qemu-img convert -f vdi -O raw v.vdi v.raw
    cmp <("$VT" cat v.vdi) v.raw || fail "$o: vdk misreads qemu-io's write into its image"

    # qemu writes, vdk reads
    qemu-img convert -f raw -O vdi -o "$o" src.raw q.vdi
    qemu-io -f vdi -c "write -P 0x11 5M 12k" -c "write -P 0x22 1023k 3k" q.vdi >/dev/null
    qemu-img convert -f vdi -O raw q.vdi q.raw
    "$VDK_IMG" convert -f vdi -O raw q.vdi vq.raw
    same_file q.raw vq.raw
    "$VDK_IMG" compare -q q.vdi q.raw || fail "$o: vdk-img compare differs"
    "$VDK_IMG" check -q q.vdi || fail "$o: vdk-img check finds errors in qemu's image"

    # map and info as qemu-img prints them
    diff <(qemu-img map -f vdi --output=json q.vdi) <("$VDK_IMG" map -f vdi --output=json q.vdi) ||
        fail "$o: map differs"
    diff <(qemu-img info -f vdi --output=json q.vdi | grep -v actual-size) \
         <("$VDK_IMG" info -f vdi --output=json q.vdi | grep -v actual-size) ||
        fail "$o: info differs"
    rm -f v.vdi q.vdi v.raw q.raw vq.raw
done

# Probing finds VDI; measure counts the blocks with data.
"$VDK_IMG" convert -O vdi src.raw p.vdi
"$VDK_IMG" info p.vdi | grep -q "file format: vdi" || fail "probe does not find vdi"
req=$("$VDK_IMG" measure -O vdi src.raw | sed -n 's/^required size: //p')
[ "$req" = $(( 1024 + 4 * 1048576 )) ] || fail "measure: required $req"
[ "$(stat -c %s p.vdi)" = "$req" ] || fail "measure does not match the converted file"

# vhdx/vdi convert through qcow2 and back keeps the data.
"$VDK_IMG" convert -f vdi -O qcow2 p.vdi p.qcow2
"$VDK_IMG" convert -f qcow2 -O vdi p.qcow2 p2.vdi
qemu-img compare -q -f vdi -F raw p2.vdi src.raw || fail "vdi -> qcow2 -> vdi changes data"

# resize: qemu-img does not resize VDI images, neither does vdk.
expect_fail "resize|support" "$VDK_IMG" resize -f vdi p.vdi 20M
echo "vdi interop ok"
