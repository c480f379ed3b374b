#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img compare beside qemu-img compare: same stdout and exit code
# (0 identical, 1 different, 2 open error) on sparse images, size
# mismatches (tail against zeros), strict mode, -q and -p.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/convert/common.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

M=$((1024 * 1024))
mkimg a.raw $M
cp a.raw a2.raw
mkimg b.raw $M 70000:1:t                 # one byte differs, mid-sector
mkimg c.raw $((2 * M)) 1500000:1:t       # longer, data in the tail
mkimg d.raw $((2 * M))                   # longer, zero tail
mkimg e.raw $((2 * M)) 0:$((2 * M)):z    # allocated zeros
mkimg f.raw $((3 * M)) 0:$M:r $((2 * M)):4096:r
cp f.raw g.raw
printf 'X' | dd of=g.raw bs=1 seek=$((2 * M + 4000)) conv=notrunc status=none
mkimg h.raw 1000000 0:1000000:r          # odd length: rounded to sectors
cp h.raw h2.raw; truncate -s 1000448 h2.raw

same_as_qemu() { # ARGS... -- stdout and exit code as qemu-img's
    local qrc=0 vrc=0
    qemu-img compare "$@" > q.out 2>/dev/null || qrc=$?
    "$VDK_IMG" compare "$@" > v.out 2> v.err || vrc=$?
    [ "$vrc" -lt 128 ] || fail "compare $* crashed"
    [ "$qrc" = "$vrc" ] || { cat v.err >&2; fail "compare $*: exit $vrc, qemu-img $qrc"; }
    diff q.out v.out >&2 || fail "compare $*: output differs from qemu-img's"
    echo "$vrc"
}

[ "$(same_as_qemu a.raw a2.raw)" = 0 ]
grep -qx 'Images are identical.' v.out
[ "$(same_as_qemu a.raw b.raw)" = 1 ]
grep -qx 'Content mismatch at offset 69632!' v.out
same_as_qemu b.raw a.raw >/dev/null
[ "$(same_as_qemu a.raw c.raw)" = 1 ]
grep -qx 'Warning: Image size mismatch!' v.out
same_as_qemu c.raw a.raw >/dev/null
[ "$(same_as_qemu a.raw d.raw)" = 0 ]
same_as_qemu d.raw e.raw >/dev/null
same_as_qemu a.raw e.raw >/dev/null
[ "$(same_as_qemu -s a.raw d.raw)" = 1 ]
grep -qx 'Strict mode: Image size mismatch!' v.out
same_as_qemu -s a.raw a2.raw >/dev/null
same_as_qemu -s a.raw b.raw >/dev/null
[ "$(same_as_qemu f.raw g.raw)" = 1 ]
cp --sparse=never f.raw f-full.raw          # same bytes, different allocation
[ "$(same_as_qemu f.raw f-full.raw)" = 0 ]
[ "$(same_as_qemu -s f.raw f-full.raw)" = 1 ]
grep -q 'block status mismatch' v.out
same_as_qemu -s f.raw g.raw >/dev/null
same_as_qemu -f raw -F raw f.raw f.raw >/dev/null
same_as_qemu h.raw h2.raw >/dev/null
[ "$(same_as_qemu -q a.raw b.raw)" = 1 ]
[ ! -s v.out ] || fail "-q printed something"
[ "$(same_as_qemu -U a.raw nope.raw)" = 2 ]
grep -q "nope.raw" v.err || fail "open error does not name the file"

# -p on a pipe still ends with the result line.
"$VDK_IMG" compare -p f.raw f.raw > p.out
[ "$(qemu_progress p.out)" = 'Images are identical.' ] || fail "-p result line"

# Usage errors exit 1 like qemu-img's.
expect_fail 'Expecting two image file names' "$VDK_IMG" compare a.raw
expect_fail 'Invalid source cache option' "$VDK_IMG" compare -T bogus a.raw b.raw
expect_fail "unrecognized option '-x'" "$VDK_IMG" compare -x a.raw b.raw
expect_fail "unknown image format 'foo'" "$VDK_IMG" compare -f foo a.raw b.raw
echo "compare: ok"
