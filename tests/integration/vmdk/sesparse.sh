#!/bin/bash
# SPDX-License-Identifier: MIT
# seSparse (ESXi 6.5+ snapshots on VMFS6), read-only as in qemu.  No tool
# here writes one, so mk-sesparse.py builds them from the layout qemu reads;
# vdk must read what qemu-img reads, byte for byte (and what the generator
# says the image holds), alone and as the child of a parent, refuse
# writes, and refuse damaged headers and tables with a clean error.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"
MK="$PY $VDK_SRC/tests/integration/vmdk/mk-sesparse.py"

# 40 MiB + 3 grains: three directory entries, the first without a table.
$MK se.vmdk $((40 * 2048 + 24)) --seed 7 --expect se.expect >/dev/null
qemu-img convert -f vmdk -O raw se.vmdk q.raw
"$VDK_IMG" convert -f vmdk -O raw se.vmdk v.raw
same_file q.raw se.expect
same_file v.raw se.expect
"$VT" cat se.vmdk > vt.raw
same_file vt.raw se.expect
# probed (no -f), map and info as qemu-img gives them
"$VDK_IMG" convert -O raw se.vmdk v2.raw
same_file v2.raw se.expect
[ "$(qemu-img map --output=json -f vmdk se.vmdk)" = "$("$VDK_IMG" map --output=json -f vmdk se.vmdk)" ] ||
    fail "map of a seSparse image differs from qemu-img's"
"$VDK_IMG" info se.vmdk | grep -q 'create type: seSparse' || fail "info: create type"
"$VDK_IMG" info --output=json se.vmdk | grep -q '"format": *"SESPARSE"' || fail "info: extent format"
"$VDK_IMG" compare -f vmdk -F raw se.vmdk q.raw
"$VDK_IMG" check se.vmdk
qemu-img check se.vmdk
# into qcow2 and back through qemu-img
"$VDK_IMG" convert -O qcow2 se.vmdk se.qcow2
qemu-img compare -q -f qcow2 -F raw se.qcow2 se.expect

# Read-only: a read-write open, and every write command, is refused.
before=$(cat se.vmdk se-sesparse.vmdk | sha256sum)
expect_fail 'no write support for seSparse' "$VDK_IMG" check -r all se.vmdk
expect_fail 'no write support for seSparse' "$VDK_IMG" resize se.vmdk 64M
expect_fail 'no write support for seSparse' "$VT" write se.vmdk 0 4096 0x55
expect_fail 'no write support for seSparse' "$VDK_IMG" rebase -u -b '' se.vmdk
[ "$before" = "$(cat se.vmdk se-sesparse.vmdk | sha256sum)" ] || fail "a seSparse image was written"

# A snapshot child: unallocated grains read the parent (a monolithicSparse
# qemu-io filled), zero and unmapped grains read zeros.
head -c 4M /dev/urandom > p.raw
truncate -s $((40 * 1048576 + 12288)) p.raw
qemu-img convert -f raw -O vmdk p.raw base.vmdk
pcid=$(dd if=base.vmdk bs=512 skip=1 count=20 status=none | tr -d '\0' | sed -n 's/^CID=//p')
$MK child.vmdk $((40 * 2048 + 24)) --seed 11 --parent base.vmdk --parent-cid "$pcid" \
    --parent-raw p.raw --expect child.expect >/dev/null
qemu-img convert -f vmdk -O raw child.vmdk qc.raw
"$VDK_IMG" convert -f vmdk -O raw child.vmdk vc.raw
same_file qc.raw child.expect
same_file vc.raw child.expect
"$VDK_IMG" info --backing-chain child.vmdk | grep -q 'backing file: base.vmdk' ||
    fail "info: parent of the seSparse child"
[ "$(qemu-img map --output=json child.vmdk)" = "$("$VDK_IMG" map --output=json child.vmdk)" ] ||
    fail "map of a seSparse child differs from qemu-img's"
# convert -B keeps only the child's own data over the same parent
"$VDK_IMG" convert -O qcow2 -B base.vmdk -F vmdk child.vmdk top.qcow2
qemu-img compare -q top.qcow2 child.expect

# Damaged headers and tables: a clean one-line error, no write.
le64() { $PY -c 'import struct,sys; print(struct.pack("<Q", int(sys.argv[1], 0)).hex())' "$1"; }
lay=$($MK d.vmdk 81920 --seed 3 --layout)
eval "$lay"   # gd gd_used gte gts
cp d-sesparse.vmdk good-sesparse.vmdk
bad() {
    local re=$1
    local before
    before=$(sha256sum < d-sesparse.vmdk)
    expect_fail "$re" timeout 60 "$VDK_IMG" info d.vmdk
    expect_fail "$re" timeout 60 "$VDK_IMG" convert -O raw d.vmdk out.raw
    [ "$before" = "$(sha256sum < d-sesparse.vmdk)" ] || fail "damaged image was written"
    rm -f out.raw
    cp good-sesparse.vmdk d-sesparse.vmdk
}
badio() {
    expect_fail "$1" timeout 60 "$VDK_IMG" convert -O raw d.vmdk out.raw
    rc=0; "$VDK_IMG" check d.vmdk >check.out 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q "$2" check.out || { cat check.out; fail "check: $2 (rc $rc)"; }
    rm -f out.raw
    cp good-sesparse.vmdk d-sesparse.vmdk
}
patch d-sesparse.vmdk 0 "$(le64 0xcafebabf)"; bad 'bad seSparse const header magic'
patch d-sesparse.vmdk 8 "$(le64 0x100000001)"; bad 'unsupported seSparse version'
patch d-sesparse.vmdk 24 "$(le64 16)"; bad 'unsupported seSparse grain size'
patch d-sesparse.vmdk 32 "$(le64 128)"; bad 'unsupported seSparse grain table size'
patch d-sesparse.vmdk 40 "$(le64 1)"; bad 'unsupported seSparse flags'
patch d-sesparse.vmdk 56 "$(le64 1)"; bad 'non-zero reserved fields or padding'
patch d-sesparse.vmdk 400 01; bad 'non-zero reserved fields or padding'
patch d-sesparse.vmdk 16 "$(le64 0x4000000000000000)"; bad 'seSparse capacity of [0-9]+ sectors exceeds'
patch d-sesparse.vmdk 80 "$(le64 0x7fffffff)"; bad 'volatile header at sector [0-9]+ lies outside'
patch d-sesparse.vmdk 128 "$(le64 0x1000000000000000)"; bad 'header field 16 .* out of range'
patch d-sesparse.vmdk 512 "$(le64 0xcafecafd)"; bad 'bad seSparse volatile header magic'
patch d-sesparse.vmdk 536 "$(le64 1)"; bad 'dirty: replaying its journal is not supported'
patch d-sesparse.vmdk 1000 01; bad 'volatile header has non-zero padding'
patch d-sesparse.vmdk 136 "$(le64 0)"; bad 'grain directory of 0 entries does not cover'
patch d-sesparse.vmdk 128 "$(le64 0xffffffff)"; bad 'grain directory at sector [0-9]+ lies past'
# directory and table entries: malformed, outside their areas, past EOF
patch d-sesparse.vmdk "$gd_used" "$(le64 0x2000000000000000)"
badio 'Input/output error' 'grain directory entry is malformed'
patch d-sesparse.vmdk "$gd_used" "$(le64 0x10000000000fffff)"
badio 'Input/output error' 'grain directory entry is malformed'
patch d-sesparse.vmdk "$gte" "$(le64 0x4000000000000000)"
badio 'Input/output error' 'grain table entry is malformed'
patch d-sesparse.vmdk "$gte" "$(le64 0x0000000000000005)"
badio 'Input/output error' 'grain table entry is malformed'
patch d-sesparse.vmdk "$gte" "$(le64 0x30000000ffffffff)"
badio 'Input/output error' 'grain table entry is malformed'
# a grain inside its area but past the end of the file
patch d-sesparse.vmdk 200 "$(le64 0xfffffff0)"
patch d-sesparse.vmdk "$gte" "$(le64 0x3000000000001000)"
badio 'Input/output error' 'points past the end of the file'
# a file cut short of its tables
truncate -s "$gts" d-sesparse.vmdk
badio 'Input/output error' 'points past the end of the file'
