#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img dd beside qemu-img dd: byte-identical output files for bs,
# count and skip combinations, the same exit codes, clear errors.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/convert/common.sh"
cd "$T"

mkimg s.raw 1000000 0:300000:r 500000:100000:t 900000:100000:r

for ops in "" "bs=4k" "bs=4k count=10 skip=3" "bs=1000" "bs=3 count=5" \
           "count=0" "bs=1M count=1" "bs=64k count=7" "bs=1000 skip=999" \
           "bs=4k skip=100 count=120" "skip=1000000 bs=512" "bs=1000 skip=1001"; do
    rm -f q.out v.out
    qrc=0 vrc=0
    qemu-img dd $ops if=s.raw of=q.out 2>/dev/null || qrc=$?
    "$VDK_IMG" dd $ops if=s.raw of=v.out 2>v.err || vrc=$?
    [ "$qrc" = "$vrc" ] || { cat v.err >&2; fail "dd $ops: exit $vrc, qemu-img $qrc"; }
    same_file q.out v.out
done
"$VDK_IMG" dd -f raw -O raw bs=4k if=s.raw of=v.out
qemu-img compare -q s.raw v.out || fail "dd copy differs from its source"

expect_fail 'Must be between 1 and 2147483647' "$VDK_IMG" dd bs=0 if=s.raw of=x
expect_fail 'Invalid bs specified' "$VDK_IMG" dd bs=1Q if=s.raw of=x
expect_fail 'Invalid count specified' "$VDK_IMG" dd count=-1 if=s.raw of=x
expect_fail 'Invalid skip specified' "$VDK_IMG" dd skip=1Q if=s.raw of=x
expect_fail 'unrecognized operand foo' "$VDK_IMG" dd foo=1 if=s.raw of=x
expect_fail 'unrecognized operand junk' "$VDK_IMG" dd if=s.raw of=x junk
expect_fail 'Must specify both input and output files' "$VDK_IMG" dd if=s.raw
expect_fail "Could not open 'nope'" "$VDK_IMG" dd if=nope of=x
expect_fail "Unknown file format 'foo'" "$VDK_IMG" dd -O foo if=s.raw of=x
echo "dd: ok"
