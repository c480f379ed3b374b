#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad VDI headers: each is refused with a one-line error, no crash, and the
# file is not written (also not when opened for writing).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=vdi
qemu-img create -q -f vdi good.vdi 4M

bad() { # OFFSET HEX REGEX
    cp good.vdi b.vdi
    patch b.vdi "$1" "$2"
    untouched b.vdi "$3" "$VDK_IMG" info -f vdi b.vdi
    untouched b.vdi "$3" "$VT" write b.vdi 0 512 1
}
bad 0x40 00000000 "bad signature"
bad 0x44 00000100 "version 1.0"
bad 0x154 01020000 "unaligned block map"
bad 0x158 01040000 "unaligned data"
bad 0x168 00100000 "sector size 4096"
bad 0x178 00002000 "block size 2097152"
bad 0x17c 00020000 "block_extra"
bad 0x170 0000000001000000 "disk size"
bad 0x1a8 01 "non-NULL link UUID"
bad 0x1b8 01 "non-NULL parent UUID"
bad 0x180 00000040 "too many blocks"
bad 0x4c 07000000 "type 7"
bad 0x154 00000100 "overlaps"
# a map larger than the file, within qemu's limits
cp good.vdi b.vdi
patch b.vdi 0x180 00001000; patch b.vdi 0x158 00005000; patch b.vdi 0x170 0000000010000000
untouched b.vdi "beyond the end of the file" "$VDK_IMG" info -f vdi b.vdi
# truncated header
head -c 300 good.vdi > t.vdi
untouched t.vdi "VDI|short" "$VDK_IMG" info -f vdi t.vdi
# a map entry past the map makes reads fail cleanly, not crash
cp good.vdi m.vdi
qemu-io -f vdi -c "write -P 1 0 4k" m.vdi >/dev/null
patch m.vdi 0x200 ffffff00
expect_fail "Input/output error|error" "$VDK_IMG" convert -f vdi -O raw m.vdi m.raw
# A data offset or block count that puts the next block past the end of
# the file (found by the fuzz campaign: a write went 2 GiB out): the image
# reads, but a write that needs a new block fails with one warning, and
# the file is left as it was.
far_out good.vdi block "0x158 00000080" "0x184 03000000"
# check -r all on such an image: clearing a shared entry leaves a hole that
# compaction fills by moving the last block, and the damaged data offset
# put that move 2 GiB out (the fuzz campaign's OOM in the repair path).
# The move is refused with the same warning; the file does not grow.
cp good.vdi r.vdi
qemu-io -f vdi -c "write -P 1 0 3M" r.vdi >/dev/null
patch r.vdi 0x204 00000000
patch r.vdi 0x158 00000080
size=$(stat -c %s r.vdi)
rc=0
"$VDK_IMG" check -r all -f vdi r.vdi >r.out 2>r.err || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || { cat r.err >&2; fail "check -r all of r.vdi: exit $rc"; }
grep -q "a block at byte [0-9]* lies past the end of the file" r.err || { cat r.err >&2; fail "check -r all of r.vdi: no warning"; }
[ "$(stat -c %s r.vdi)" = "$size" ] || fail "check -r all grew r.vdi from $size to $(stat -c %s r.vdi) bytes"
echo "vdi bad images ok"
