#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img check beside qemu-img 7.2 check on damaged VDI, Parallels, VMDK,
# VHD and VHDX images (made here by qemu-img and qemu-io, then patched):
# the same stdout, stderr (program name aside) and exit code; where vdk
# departs on purpose (docs/vdk-img.1, vdk-vm-formats.7, vdk-vmdk.7) the
# departure itself is asserted.  Argument: vhd-tool (tests/unit/vhd).
. "$VDK_SRC/tests/integration/lib.sh"
VT=${1:?usage: $0 VHD_TOOL}
PY=/usr/bin/python3
cd "$T"
mkdir q v

put() { # FILE OFFSET STRUCT VALUE: struct.pack(STRUCT, VALUE) at OFFSET
    $PY -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2],0))
f.write(struct.pack(sys.argv[3], int(sys.argv[4],0)))' "$@"
}
get() { # FILE OFFSET STRUCT
    $PY -c 'import struct,sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2],0))
print(struct.unpack(sys.argv[3], f.read(struct.calcsize(sys.argv[3])))[0])' "$@"
}

# side IMG ARGS...: `check ARGS` by qemu-img on q/x.img and by vdk-img on
# v/x.img, copies of IMG under the same name.  Leaves qrc, vrc, and
# {q,v}.out, {q,v}.err with "qemu-img: "/"vdk-img: " made "PROG: ";
# v.err holds no "warning: " lines (those go to v.warn).
side() {
    local img=$1; shift
    cp "$img" q/x.img; cp "$img" v/x.img
    qrc=0; (cd q && qemu-img check "$@" x.img) >q.out 2>q.raw || qrc=$?
    vrc=0; (cd v && "$VDK_IMG" check "$@" x.img) >v.out 2>v.raw || vrc=$?
    [ "$vrc" -lt 128 ] || fail "vdk-img check $* crashed (signal $((vrc - 128)))"
    sed 's/^qemu-img: /PROG: /' q.raw >q.err
    sed 's/^vdk-img: /PROG: /' v.raw | grep -v '^warning: ' >v.err || true
    grep '^warning: ' v.raw >v.warn || true
}
show() {
    echo "--- qemu-img check (exit $qrc):"; cat q.out q.raw
    echo "--- vdk-img check (exit $vrc):"; cat v.out v.raw
}
# same WHAT: the two checks agree, warnings of vdk aside
same() {
    { [ "$qrc" = "$vrc" ] && cmp -s q.out v.out && cmp -s q.err v.err; } ||
        { show >&2; fail "$1: vdk-img check differs from qemu-img check"; }
}
warned() { # WHAT REGEX: vdk-img gave that warning
    grep -qE -- "$2" v.warn || { show >&2; fail "$1: no warning /$2/"; }
}
nowarn() { [ ! -s v.warn ] || { show >&2; fail "$1: unexpected warning"; }; }

# ---- VDI (8 MiB, 1 MiB blocks 0, 2, 5 written; map at 512) ----
qemu-img create -q -f vdi vdi.img 8M
qemu-io -f vdi -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 1M" -c "write -P 0x63 5M 1M" \
    vdi.img >/dev/null
side vdi.img; same "vdi clean"; nowarn "vdi clean"
# 1. header count 5 for 3 blocks: "is 3, should be 5" as qemu prints it
cp vdi.img a.img; put a.img 0x184 '<I' 5
side a.img; same "vdi count"
grep -qx 'ERROR: allocated blocks mismatch, is 3, should be 5' v.err || fail "vdi count text"
side a.img --output=json; same "vdi count json"
# two entries on one block: qemu names the block twice and counts both
cp vdi.img a.img; put a.img $((512 + 4 * 7)) '<I' 0
side a.img; same "vdi shared block"
cp vdi.img a.img; put a.img $((512 + 4 * 3)) '<I' 99
side a.img; same "vdi entry past the map"
# a block partly past the end of the file: a warning, qemu's exit code
cp vdi.img a.img; truncate -s $(( $(stat -c %s a.img) - 4096 )) a.img
side a.img; same "vdi truncated"; warned "vdi truncated" 'block index 5 maps block 2 past the end'
# -r all: qemu-img cannot repair VDI (63); vdk repairs, qemu agrees after
cp vdi.img a.img; put a.img $((512 + 4 * 7)) '<I' 0
side a.img -r all
[ "$qrc" = 63 ] && [ "$vrc" = 0 ] || { show >&2; fail "vdi -r all: exits $qrc/$vrc"; }
qemu-img check -q -f vdi v/x.img || fail "vdi -r all: qemu-img finds errors in vdk's repair"

# ---- Parallels (8 MiB, 1 MiB clusters: entries 0, 2, 5 -> 1, 2, 3) ----
qemu-img create -q -f parallels prl.img 8M
qemu-io -f parallels -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 1M" -c "write -P 0x63 5M 1M" \
    prl.img >/dev/null
side prl.img; same "parallels clean"
# 2. entry 5 names entry 0's cluster; cluster 3, now unnamed, ends the
#    file.  qemu-img 7.2 sees only that leak (exit 3, "no harm to data")
#    although a write through entry 5 changes entry 0's data; vdk reports
#    the duplicate as qemu 8.1 does (a corruption, exit 2) and the leak.
cp prl.img a.img; put a.img $((64 + 4 * 5)) '<I' "$(get prl.img 64 '<I')"
side a.img
[ "$qrc" = 3 ] && grep -qx 'ERROR space leaked at the end of the image 1048576' q.err ||
    { show >&2; fail "parallels duplicate: premise (qemu-img 7.2 sees a leak only)"; }
[ "$vrc" = 2 ] || { show >&2; fail "parallels duplicate: exit $vrc, want 2"; }
grep -v '^ERROR duplicate offset in BAT entry 5$' v.err | cmp -s - q.err &&
    grep -qx 'ERROR duplicate offset in BAT entry 5' v.err ||
    { show >&2; fail "parallels duplicate: stderr is not qemu-img's plus the duplicate"; }
{ printf '\n1 errors were found on the image.\nData may be corrupted, or further writes '
  printf 'to the image may corrupt it.\n'; cat q.out; } | cmp -s - v.out ||
    { show >&2; fail "parallels duplicate: stdout is not qemu-img's plus the corruption"; }
# -r all: qemu cuts the leak and leaves the entries shared; vdk gives
# entry 5 a copy: both read the same, and the copies are independent
side a.img -r all
[ "$qrc" = 0 ] && [ "$vrc" = 0 ] || { show >&2; fail "parallels duplicate -r all: $qrc/$vrc"; }
qemu-img compare -q -f parallels -F parallels q/x.img v/x.img || fail "parallels repair data"
qemu-img check -q -f parallels v/x.img || fail "parallels repair: qemu-img check"
qemu-io -f parallels -c "write -P 0x99 5M 4k" v/x.img >/dev/null
qemu-io -f parallels -c "read -P 0x61 0 1M" v/x.img >/dev/null ||
    fail "parallels repair: entries still share a cluster"
# cluster past the end of the file, leaked space, in-use flag: the same
cp prl.img a.img; put a.img $((64 + 4 * 6)) '<I' 2000
side a.img; same "parallels cluster outside"
side a.img -r all; same "parallels cluster outside -r all"
cp prl.img a.img; truncate -s +200k a.img
side a.img; same "parallels leak"
side a.img -r leaks; same "parallels leak -r leaks"
cp prl.img a.img; put a.img 44 '<I' 0x746f6e59
side a.img; same "parallels in use"
side a.img -r all; same "parallels in use -r all"

# ---- VMDK (monolithicSparse 8 MiB, grains at 0, 2M, 5M) ----
qemu-img create -q -f vmdk vmdk.img 8M
qemu-io -f vmdk -c "write -P 0x61 0 64k" -c "write -P 0x62 2M 64k" -c "write -P 0x63 5M 64k" \
    vmdk.img >/dev/null
side vmdk.img; same "vmdk clean"; nowarn "vmdk clean"
rgd=$(( $(get vmdk.img 48 '<Q') * 512 )); gd=$(( $(get vmdk.img 56 '<Q') * 512 ))
rgt=$(( $(get vmdk.img $rgd '<I') * 512 )); gt=$(( $(get vmdk.img $gd '<I') * 512 ))
# 3. the redundant grain table differs (qemu and vdk read only the primary
#    one): exit 0 as qemu-img, and a warning
cp vmdk.img a.img; put a.img $((rgt + 4 * 32)) '<I' 0
side a.img; same "vmdk redundant table"; warned "vmdk redundant table" 'redundant grain table 0'
cp vmdk.img a.img; put a.img $((rgd)) '<I' 0
side a.img; same "vmdk redundant directory"; warned "vmdk redundant directory" 'redundant grain table 0'
# grains past the end of the file: qemu stops at the first (exit 1)
cp vmdk.img a.img; put a.img $((gt + 4 * 80)) '<I' 99999
side a.img; same "vmdk grain past EOF"
put a.img $((gt + 4 * 1)) '<I' 99999
side a.img; same "vmdk two grains past EOF"
# a grain over the grain directory: qemu reads it and its writes there
# overwrite the directory (check: exit 0); vdk reads the same bytes,
# refuses writes into it and check reports it (exit 2)
cp vmdk.img a.img; put a.img $((gt + 4 * 2)) '<I' $((gd / 512))
qemu-img convert -f vmdk -O raw a.img q.raw
"$VDK_IMG" convert -f vmdk -O raw a.img v.raw
cmp -s q.raw v.raw || fail "vmdk grain over the directory: vdk reads other bytes than qemu"
side a.img
[ "$qrc" = 0 ] && [ "$vrc" = 2 ] &&
    grep -qx 'ERROR: grain for sector 256 lies over the VMDK metadata' v.err ||
    { show >&2; fail "vmdk grain over the directory: check"; }
cp a.img b.img
expect_fail 'Input/output error' env FMT=vmdk "$VT" write b.img $((128 << 10)) 4096 0x77
cmp -s a.img b.img || fail "vmdk grain over the directory: a refused write changed the file"
# -r all: qemu-img has no VMDK repair (63); vdk rewrites the table
cp vmdk.img a.img; put a.img $((rgt + 4 * 32)) '<I' 0
side a.img -r all
[ "$qrc" = 63 ] && [ "$vrc" = 0 ] || { show >&2; fail "vmdk -r all: exits $qrc/$vrc"; }
cp v/x.img b.img; side b.img; same "vmdk after repair"; nowarn "vmdk after repair"

# ---- VHD (dynamic 8 MiB, 2 MiB blocks 0 and 2 written; BAT at 1536) ----
# qemu-img has no check for vpc (exit 63): only reads are compared.
# 4. BAT entry 3 names the BAT itself.  qemu reads those bytes; its first
#    write there sets the block's bitmap over the BAT (every block then
#    reads as unallocated).  vdk reads as qemu does, with a warning,
#    refuses writes into the block, and check reports it; -r all clears
#    the entry.
qemu-img create -q -f vpc vhd.img 8M
qemu-io -f vpc -c "write -P 0x61 0 1M" -c "write -P 0x62 4M 1M" vhd.img >/dev/null
cp vhd.img a.img; put a.img $((1536 + 4 * 3)) '>I' 3
qemu-img convert -f vpc -O raw a.img q.raw
"$VDK_IMG" convert -f vpc -O raw a.img v.raw 2>v.raw.err ||
    { cat v.raw.err >&2; fail "vhd block over the BAT: vdk refuses to read it"; }
cmp -s q.raw v.raw || fail "vhd block over the BAT: vdk reads other bytes than qemu"
grep -q 'BAT entry 3 of .* overlaps the image metadata' v.raw.err || fail "vhd: no warning"
side a.img
[ "$qrc" = 63 ] && [ "$vrc" = 2 ] &&
    grep -qx 'ERROR BAT entry 3 (block at 0x600) overlaps the image metadata' v.err ||
    { show >&2; fail "vhd block over the BAT: check"; }
cp a.img b.img
expect_fail 'Input/output error' "$VT" write b.img $((6 << 20)) 4096 0x77
cmp -s a.img b.img || fail "vhd block over the BAT: a refused write changed the file"
"$VT" write b.img $((2 << 20)) 4096 0x78 || fail "vhd: a write elsewhere is refused"
qemu-io -f vpc -c "read -P 0x61 0 1M" -c "read -P 0x78 2M 4k" -c "read -P 0x62 4M 1M" b.img \
    >/dev/null || fail "vhd: data after a write beside the block over the BAT"
side a.img -r all
[ "$vrc" = 0 ] && grep -qx 'Repairing BAT entry 3 (block at 0x600) overlaps the image metadata' v.err ||
    { show >&2; fail "vhd block over the BAT: check -r all"; }
"$VDK_IMG" check -q v/x.img || fail "vhd: errors after repair"
qemu-io -f vpc -c "read -P 0x61 0 1M" -c "read -P 0 6M 2M" v/x.img >/dev/null ||
    fail "vhd: data after repair"
"$VT" write v/x.img $((6 << 20)) 4096 0x77 || fail "vhd: block not writable after repair"
qemu-io -f vpc -c "read -P 0x77 6M 4k" -c "read -P 0x62 4M 1M" v/x.img >/dev/null ||
    fail "vhd: write after repair"

# ---- VHDX (8 MiB, 1 MiB blocks 0, 2, 5 at 8, 9, 10 MiB; BAT at 2 MiB) ----
qemu-img create -q -f vhdx -o block_size=1M vhdx.img 8M
qemu-io -f vhdx -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 1M" -c "write -P 0x63 5M 1M" \
    vhdx.img >/dev/null
side vhdx.img; same "vhdx clean"
ent() { echo $(( ($1 << 20) | 6 )); } # fully present block at MiB $1
bat=$((2 << 20))
cp vhdx.img a.img; put a.img $((bat + 8 * 7)) '<Q' "$(ent 500)"
side a.img; same "vhdx block past EOF"
cp vhdx.img a.img; put a.img $((bat + 8 * 4)) '<Q' "$(ent 3)"
side a.img; same "vhdx block over the metadata region"
cp vhdx.img a.img; put a.img $((bat + 8 * 4)) '<Q' "$(ent 1)"
side a.img; same "vhdx block over the log"
cp vhdx.img a.img; truncate -s $(( (10 << 20) + 4096 )) a.img
side a.img; same "vhdx truncated block"
# state 5 (unmapped in the 0.95 draft): qemu reads zeros, and so does vdk
cp vhdx.img a.img; put a.img $((bat + 8 * 2)) '<Q' $(( (9 << 20) | 5 ))
side a.img; same "vhdx state 5"
"$VDK_IMG" convert -f vhdx -O raw a.img v.raw && qemu-img convert -f vhdx -O raw a.img q.raw &&
    cmp -s v.raw q.raw || fail "vhdx state 5: vdk reads other bytes than qemu"
env FMT=vhdx "$VT" write a.img $((2 << 20)) 4096 0x79
qemu-io -f vhdx -c "read -P 0x79 2M 4k" -c "read -P 0 2052k 1020k" -c "read -P 0x61 0 1M" \
    -c "read -P 0x63 5M 1M" a.img >/dev/null || fail "vhdx state 5: a write there"
qemu-img check -q -f vhdx a.img || fail "vhdx state 5: qemu-img check after a write there"
# 2 MiB blocks over two regions each: qemu names the region it registered
# last (metadata, then BAT, then log)
qemu-img create -q -f vhdx -o block_size=2M vhdx2.img 8M
qemu-io -f vhdx -c "write -P 0x61 0 2M" vhdx2.img >/dev/null
put vhdx2.img $((bat + 8)) '<Q' "$(ent 2)"; put vhdx2.img $((bat + 16)) '<Q' "$(ent 1)"
side vhdx2.img; same "vhdx blocks over two regions"
# two entries on one block: qemu-img 7.2 does not look (exit 0); a write
# through one changes the other's data, so vdk reports it (exit 2)
cp vhdx.img a.img; put a.img $((bat + 8 * 6)) '<Q' "$(ent 8)"
side a.img
[ "$qrc" = 0 ] && [ "$vrc" = 2 ] &&
    grep -qx 'PROG: VHDX BAT entry 6 overlaps the block of entry 0' v.err ||
    { show >&2; fail "vhdx shared block"; }
echo "check like qemu ok"
