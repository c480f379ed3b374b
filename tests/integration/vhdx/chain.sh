#!/bin/bash
# SPDX-License-Identifier: MIT
# rebase (safe, -u, onto no parent) and commit on differencing VHDX chains.
# qemu-img cannot open differencing VHDX images, so each operation runs on
# twin chains: the same data in a qcow2 chain that qemu-img/qemu-io build
# and change, and in a VHDX chain vdk builds and changes; after each step
# both must read the same guest bytes, vdk-img check and libvhdi (with the
# parent) must agree.  qemu-img commit empties a qcow2 child (it has
# make_empty); vdk does the same for a VHDX child.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"

pattern_raw src.raw 20M
head -c 3M /dev/urandom > other.raw
truncate -s 20M other.raw
# twin bases and a second parent
qemu-img convert -f raw -O qcow2 src.raw base.qcow2
qemu-img convert -f raw -O qcow2 other.raw other.qcow2
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M src.raw base.vhdx
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M other.raw other.vhdx

# chain: base <- mid <- top, the same writes on both sides
# (a VHDX child links to its parent's data write GUID, which a write to
# the parent renews: the parent is written before the child is made)
chain() {
    rm -f mid.qcow2 top.qcow2 mid.vhdx top.vhdx
    local img w
    for img in mid top; do
        local below=base
        [ $img = top ] && below=mid
        qemu-img create -q -f qcow2 -b $below.qcow2 -F qcow2 $img.qcow2
        "$VDK_IMG" create -q -f vhdx -o block_size=1M -b $below.vhdx -F vhdx $img.vhdx
        for w in "mid 1048576 2097152 0x31" "mid 6291456 4096 0x32" "top 2097152 512 0x41" \
                 "top 9437184 1048576 0x42" "top 20970496 512 0x43"; do
            set -- $w
            [ "$1" = $img ] || continue
            qemu-io -f qcow2 -c "write -P $4 $2 $3" "$1.qcow2" >/dev/null
            "$VT" write "$1.vhdx" "$2" "$3" "$4"
        done
    done
}
# lib_same IMG RAW [PARENT...]: libvhdi reads IMG as RAW.  Its block 0 is
# skipped: libvhdi 20210425 takes a sector-bitmap BAT entry that is "not
# present" (offset 0) as a bitmap at the file's start, so a not-present
# block 0 of a differencing image reads zeros wherever the bits of
# "vhdxfile" and the creator are set (the spec: the parent's data).
lib_same() {
    local img=$1 raw=$2; shift 2
    pyread "$img" lib.raw "$@"
    cmp -s <(tail -c +1048577 lib.raw) <(tail -c +1048577 "$raw") ||
        fail "libvhdi reads $img differently"
}
# twins IMG: both chains read the same from IMG down, and are clean
twins() {
    qemu-img convert -O raw "$1.qcow2" q.raw
    "$VDK_IMG" convert -O raw "$1.vhdx" v.raw
    same_file q.raw v.raw
    "$VDK_IMG" check -q "$1.vhdx" || fail "$1.vhdx not clean"
}

# safe rebase onto the base: mid's data is copied into top
chain
qemu-img rebase -b base.qcow2 -F qcow2 top.qcow2
"$VDK_IMG" rebase -b base.vhdx -F vhdx top.vhdx
twins top
"$VDK_IMG" info top.vhdx | grep -q 'backing file: base.vhdx' || fail "rebase: new parent not shown"
lib_same top.vhdx v.raw base.vhdx
rm mid.vhdx   # top no longer needs it
"$VDK_IMG" convert -O raw top.vhdx v2.raw
same_file v2.raw q.raw

# safe rebase onto another parent, by an absolute path (a longer locator)
qemu-img rebase -b "$T/other.qcow2" -F qcow2 top.qcow2
"$VDK_IMG" rebase -b "$T/other.vhdx" -F vhdx top.vhdx
twins top
lib_same top.vhdx v.raw other.vhdx

# unsafe rebase: only the reference changes, what shows through changes too
qemu-img rebase -u -b base.qcow2 -F qcow2 top.qcow2
"$VDK_IMG" rebase -u -b base.vhdx -F vhdx top.vhdx
twins top
# a parent of another format is refused, the parent kept
expect_fail 'a VHDX parent must be VHDX' "$VDK_IMG" rebase -u -b base.qcow2 -F qcow2 top.vhdx
"$VDK_IMG" info top.vhdx | grep -q 'backing file: base.vhdx' || fail "refused rebase changed the parent"
twins top

# commit without -d: the data goes into the parent and the child is empty
chain
qemu-img commit top.qcow2
"$VDK_IMG" commit top.vhdx
twins mid
twins top
"$VDK_IMG" map --output=json top.vhdx | grep -q '"depth": 0' &&
    fail "commit left data allocated in top.vhdx"
[ "$(stat -c %s top.vhdx)" -le $((8 << 20)) ] || fail "commit did not give the blocks back"
lib_same top.vhdx v.raw mid.vhdx base.vhdx
# qemu-img leaves a qcow2 child empty too
qemu-img map --output=json top.qcow2 | grep -q '"depth": 0' &&
    fail "qemu-img left data in top.qcow2"

# commit -d keeps the child's data
chain
qemu-img commit -d top.qcow2
"$VDK_IMG" commit -d top.vhdx
twins mid
twins top
"$VDK_IMG" map --output=json top.vhdx | grep -q '"depth": 0' ||
    fail "commit -d emptied top.vhdx"

# rebase onto no parent: the image becomes a dynamic one holding it all,
# a partially present block (as Hyper-V writes them) filled with what
# showed through from the parent
chain
twins mid
cp v.raw mid.raw
qemu-img convert -O raw top.qcow2 q.raw
"$VT" write top.vhdx 0 1048576 0x71
make_partial top.vhdx          # sectors 0-7, 100-103 present: the rest is mid's
"$VDK_IMG" convert -O raw top.vhdx pre.raw
$PY - pre.raw q.raw mid.raw <<'PYEOF'
import sys
v, q, m = (open(a, 'rb').read() for a in sys.argv[1:4])
want = bytearray(q)
for s in range(2048):
    src = b'\x71' * 512 if s < 8 or 100 <= s < 104 else m[s * 512:(s + 1) * 512]
    want[s * 512:(s + 1) * 512] = src
assert bytes(want) == v, "the partially present block reads wrong"
PYEOF
"$VDK_IMG" rebase -b '' top.vhdx
"$VDK_IMG" convert -O raw top.vhdx v.raw
same_file v.raw pre.raw
"$VDK_IMG" info top.vhdx | grep -q 'backing file' && fail "rebase -b '': parent still shown"
"$VDK_IMG" check -q top.vhdx || fail "rebase -b '': not clean"
rm mid.vhdx base.vhdx
qemu-img compare -q -f vhdx -F raw top.vhdx pre.raw || fail "qemu-img reads the rebased image differently"
qemu-img check -q -f vhdx top.vhdx
vhdiinfo top.vhdx | grep -qi "Disk type.*Dynamic" || fail "vhdiinfo: not dynamic after rebase -b ''"
pyread top.vhdx top.lib
same_file top.lib pre.raw   # no parent: block 0 too
echo "vhdx chain ok"
