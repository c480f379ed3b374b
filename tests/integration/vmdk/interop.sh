#!/bin/bash
# SPDX-License-Identifier: MIT
# VMDK interop with qemu-img 7.2 and qemu-io, both ways, over every
# subformat qemu-img creates (streamOptimized: stream.sh) and its options:
#  - vdk create writes the same header and descriptor as qemu-img (CID
#    and the image's own name aside) and the same extent files;
#  - vdk reads qemu's images byte-exact after qemu-io writes;
#  - qemu reads vdk's images byte-exact after vdk's writes, `qemu-img
#    check` finds no errors, qemu-io can still write them, and the
#    allocation maps agree;
#  - libvmdk's vmdkinfo reads vdk's images.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

qemu_writes() {
    qemu-io -f vmdk -c "write -P 0x5a 0 4096" -c "write -P 0xa5 65000 70000" \
        -c "write -z 131072 65536" -c "write -P 0x3c $(( $2 - 4096 )) 4096" "$1" >/dev/null
}
vdk_writes() {
    "$VT" write "$1" 0 4096 0x5a
    "$VT" write "$1" 65000 70000 0xa5
    "$VT" zero "$1" 131072 65536
    "$VT" write "$1" $(( $2 - 4096 )) 4096 0x3c
}
vsize() { qemu-img info -f vmdk --output=json "$1" | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p'; }

n=0
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    for o in "" adapter_type=lsilogic "adapter_type=buslogic,hwversion=7,toolsversion=10240" \
             "compat6=on,zeroed_grain=on,adapter_type=legacyESX" zeroed_grain=on; do
        for size in 10M 30000000; do
            opts="subformat=$sub${o:+,$o}"
            case $sub$o in *Flat*zeroed_grain*)
                qemu-img create -q -f vmdk -o "$opts" q.vmdk "$size" 2>/dev/null &&
                    fail "qemu-img accepts $opts"
                expect_fail "Flat image can't enable zeroed grain" \
                    "$VDK_IMG" create -q -f vmdk -o "$opts" v.vmdk "$size"
                continue ;;
            esac
            qemu-img create -q -f vmdk -o "$opts" q.vmdk "$size"
            "$VDK_IMG" create -q -f vmdk -o "$opts" v.vmdk "$size"
            what="$opts size=$size"
            diff <(desc q.vmdk) <(desc v.vmdk) >&2 || fail "$what: descriptors differ"
            case $sub in
            monolithicSparse) [ "$(hdr q.vmdk)" = "$(hdr v.vmdk)" ] || fail "$what: headers differ" ;;
            twoGbMaxExtentSparse) same_file q-s001.vmdk v-s001.vmdk ;;
            monolithicFlat) cmp -s q-flat.vmdk v-flat.vmdk || fail "$what: flat extents differ" ;;
            esac
            qs=$(vsize q.vmdk) vs=$(vsize v.vmdk)
            [ "$qs" = "$vs" ] || fail "$what: qemu $qs bytes, vdk $vs"

            qemu_writes q.vmdk "$qs"
            qemu-img convert -f vmdk -O raw q.vmdk q.raw
            cmp <("$VT" cat q.vmdk) q.raw || fail "$what: vdk misreads qemu's image"
            vdk_writes v.vmdk "$vs"
            qemu-img check -q v.vmdk || fail "$what: qemu-img check finds errors in vdk's image"
            "$VDK_IMG" check -q q.vmdk || fail "$what: vdk check finds errors in qemu's image"
            diff <(qemu-img check --output=json q.vmdk) <("$VDK_IMG" check --output=json q.vmdk) >&2 ||
                fail "$what: check output differs from qemu-img's"
            qemu-img compare -q -f vmdk -F vmdk v.vmdk q.vmdk || fail "$what: images differ"
            case $sub in *Sparse)
                diff <(qemu-img map --output=json q.vmdk) <("$VDK_IMG" map --output=json v.vmdk) >&2 ||
                    fail "$what: allocation maps differ"
                case $o in
                "") [ "$(hdr q.vmdk)" = "$(hdr v.vmdk)" ] && [ $sub = twoGbMaxExtentSparse ] ||
                    cmp -s <(tail -c +$((64 * 1024 + 1)) q.vmdk) <(tail -c +$((64 * 1024 + 1)) v.vmdk) ||
                    fail "$what: grain tables and grains differ from qemu's" ;;
                esac ;;
            esac
            vmdkinfo v.vmdk >/dev/null || fail "$what: vmdkinfo cannot read vdk's image"
            # still writable by qemu-io, and vdk reads what it wrote
            qemu-io -f vmdk -c "write -P 0x77 1048576 200000" v.vmdk >/dev/null
            qemu-img check -q v.vmdk || fail "$what: qemu-io's write broke the image"
            qemu-img convert -f vmdk -O raw v.vmdk v.raw
            cmp <("$VT" cat v.vmdk) v.raw || fail "$what: vdk misreads after qemu-io's write"
            rm -f q*.vmdk v*.vmdk q.raw v.raw
            n=$((n + 1))
        done
    done
done
echo "$n subformat/option combinations agree with qemu-img"

# info: qemu's format-specific JSON, field for field (CIDs differ)
for sub in monolithicSparse twoGbMaxExtentFlat streamOptimized; do
    qemu-img create -q -f vmdk -o subformat=$sub img.vmdk 3G
    norm() { grep -v '"cid"\|actual-size'; }
    diff <(qemu-img info --output=json img.vmdk | norm) \
         <("$VDK_IMG" info --output=json img.vmdk | norm) >&2 || fail "$sub: info JSON differs"
    rm -f img*.vmdk
done

# Multi-extent images just over 2 GiB, sparse on disk: data across the
# extent boundary lands in both extents and reads back in both tools.
for sub in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
    "$VDK_IMG" create -q -f vmdk -o subformat=$sub big.vmdk 2049M
    [ -f big-${sub:14:1}002.vmdk ] 2>/dev/null || ls big-*002.vmdk >/dev/null ||
        fail "$sub: no second extent"
    "$VT" write big.vmdk $(( 2048 * 1048576 - 65536 )) 131072 0xe1
    qemu-io -f vmdk -c "read -P 0xe1 $(( 2048 * 1048576 - 65536 )) 131072" big.vmdk |
        grep -q 'read 131072' || fail "$sub: qemu misreads across the extent boundary"
    qemu-io -f vmdk -c "write -P 0x1e $(( 2049 * 1048576 - 512 )) 512" big.vmdk >/dev/null
    [ "$("$VT" cat big.vmdk | tail -c 512 | tr -d '\036' | wc -c)" = 0 ] ||
        fail "$sub: vdk misreads the last sector of the second extent"
    qemu-img check -q big.vmdk || fail "$sub: qemu-img check"
    du=$(du -sk . | cut -f1)
    [ "$du" -lt 10240 ] || fail "$sub: 2 GiB image takes ${du} KiB on disk"
    rm -f big*.vmdk
done
echo ok
