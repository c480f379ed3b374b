#!/bin/bash
# SPDX-License-Identifier: MIT
# VHDX interop with qemu-img, qemu-io and libvhdi, both ways:
#  - vdk creates the bytes qemu-img creates (creator, GUIDs, sequence
#    numbers aside) for every subformat/block_size/log_size/
#    block_state_zero combination;
#  - vdk reads qemu's images byte-exact, qemu reads vdk's byte-exact,
#    finds them clean and still writes into them; libvhdi reads them;
#  - 4096-byte logical sectors (qemu cannot open them): vdk and libvhdi.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"

for a in 64M 1000000 3G "-o subformat=fixed 8M" "-o block_state_zero=off 64M" \
         "-o subformat=fixed,block_state_zero=off 9M" "-o log_size=1500k,block_size=2M 100M" \
         "-o block_size=512M 64M" "-o block_size=1M 300M"; do
    qemu-img create -q -f vhdx q.vhdx $a
    "$VDK_IMG" create -q -f vhdx v.vhdx $a
    [ "$(stat -c %s q.vhdx)" = "$(stat -c %s v.vhdx)" ] || fail "$a: file sizes differ"
    d=$(vhdx_diff_mask q.vhdx v.vhdx | head -3)
    [ -z "$d" ] || fail "$a: bytes differ from qemu-img's at $d"
    rm -f q.vhdx v.vhdx
done
expect_fail "power of two" "$VDK_IMG" create -f vhdx -o block_size=3M x.vhdx 64M
expect_fail "max of 64TB" "$VDK_IMG" create -f vhdx x.vhdx 65T

pattern_raw src.raw 20M
for o in subformat=dynamic subformat=fixed block_state_zero=off,block_size=1M; do
    "$VDK_IMG" convert -f raw -O vhdx -o "$o" src.raw v.vhdx
    qemu-img compare -q -f raw -F vhdx src.raw v.vhdx || fail "$o: qemu reads vdk's convert wrong"
    qemu-img check -q -f vhdx v.vhdx || fail "$o: qemu-img check finds errors"
    "$VT" write v.vhdx 9437184 70000 0x5a
    "$VT" write v.vhdx 8388096 1024 0x3c
    "$VT" zero v.vhdx 0 4096
    qemu-img convert -f vhdx -O raw v.vhdx v.raw
    cmp <("$VT" cat v.vhdx) v.raw || fail "$o: qemu and vdk read vdk's writes differently"
    pyread v.vhdx v.lib
    same_file v.raw v.lib
    qemu-img check -q -f vhdx v.vhdx || fail "$o: not clean after vdk's writes"
    qemu-io -f vhdx -c "write -P 0x77 17M 1M" v.vhdx >/dev/null || fail "$o: qemu-io cannot write"
    qemu-img convert -f vhdx -O raw v.vhdx v.raw
    cmp <("$VT" cat v.vhdx) v.raw || fail "$o: vdk misreads qemu-io's write"

    qemu-img convert -f raw -O vhdx -o "$o" src.raw q.vhdx
    qemu-io -f vhdx -c "write -P 0x11 5M 12k" -c "write -P 0x22 1023k 3k" -c "discard 12M 1M" \
        q.vhdx >/dev/null
    qemu-img convert -f vhdx -O raw q.vhdx q.raw
    "$VDK_IMG" convert -f vhdx -O raw q.vhdx vq.raw
    same_file q.raw vq.raw
    "$VDK_IMG" compare -q q.vhdx q.raw || fail "$o: vdk-img compare differs"
    "$VDK_IMG" check -q q.vhdx || fail "$o: vdk-img check finds errors in qemu's image"
    diff <(qemu-img info -f vhdx --output=json q.vhdx | grep -v actual-size) \
         <("$VDK_IMG" info -f vhdx --output=json q.vhdx | grep -v actual-size) ||
        fail "$o: info differs"
    rm -f v.vhdx q.vhdx v.raw q.raw vq.raw v.lib
done

# whole-block zeroes: the blocks read as zeros, qemu agrees
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M src.raw d.vhdx
"$VT" zero d.vhdx 0 2097152
qemu-io -f vhdx -c "read -P 0 0 2M" -c "read -P 0 0 2M" d.vhdx >/dev/null || fail "zeroed blocks"
qemu-img check -q -f vhdx d.vhdx || fail "zero blocks: not clean"

# every payload state of a dynamic image reads as qemu reads it: blocks
# 1..3 of a 1 MiB-block image with data become UNDEFINED, ZERO, UNMAPPED
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M src.raw st.vhdx
bat=$(vhdx_region st.vhdx bat)
patch st.vhdx $((bat + 8)) 0100000000000000
patch st.vhdx $((bat + 16)) 0200000000000000
patch st.vhdx $((bat + 24)) 0300000000000000
qemu-img convert -f vhdx -O raw st.vhdx st-q.raw
"$VDK_IMG" convert -f vhdx -O raw st.vhdx st-v.raw
same_file st-q.raw st-v.raw
cmp -s <(head -c 4M st-v.raw | tail -c 3M) <(head -c 3M /dev/zero) || fail "states 1-3 are not zeros"
"$VT" write st.vhdx 1048576 512 0x31          # writes into each of them
"$VT" write st.vhdx 2097152 512 0x32
"$VT" write st.vhdx 3145728 512 0x33
qemu-img check -q -f vhdx st.vhdx || fail "writes into UNDEFINED/ZERO/UNMAPPED blocks"
qemu-io -f vhdx -c "read -P 0x31 1M 512" -c "read -P 0 1049088 1023k" -c "read -P 0x33 3M 512" \
    st.vhdx >/dev/null || fail "data after writes into UNDEFINED/ZERO/UNMAPPED blocks"

# 4096-byte logical sectors: vdk and libvhdi agree
"$VDK_IMG" create -q -f vhdx -o logical_sector_size=4096,block_size=1M s4.vhdx 20M
"$VDK_IMG" convert -n -f raw -O vhdx src.raw s4.vhdx
"$VT" write s4.vhdx 12288 8192 0x44
vhdiinfo s4.vhdx | grep -q "Bytes per sector.*4096" || fail "vhdiinfo: sector size"
pyread s4.vhdx s4.lib
cmp s4.lib <("$VT" cat s4.vhdx) || fail "libvhdi reads the 4096-byte-sector image differently"
cp src.raw s4.raw; dd if=s4.lib of=/dev/null status=none
head -c 12288 src.raw | cmp -s - <(head -c 12288 s4.lib) || fail "4k image: data"
"$VDK_IMG" check -q -f vhdx s4.vhdx || fail "4k image: check"

# measure = the size convert produces
req=$("$VDK_IMG" measure -O vhdx -o block_size=1M src.raw | sed -n 's/^required size: //p')
"$VDK_IMG" convert -O vhdx -o block_size=1M src.raw m.vhdx
[ "$(stat -c %s m.vhdx)" = "$req" ] || fail "measure $req, file $(stat -c %s m.vhdx)"
"$VDK_IMG" info m.vhdx | grep -q "file format: vhdx" || fail "probe"
expect_fail "resize|support" "$VDK_IMG" resize -f vhdx m.vhdx 40M
echo "vhdx interop ok"
