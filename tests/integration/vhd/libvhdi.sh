#!/bin/bash
# SPDX-License-Identifier: MIT
# libvhdi (python3-libvhdi, and vhdiinfo from libvhdi-utils) reads the
# fixed, dynamic and differencing images vdk writes byte-exact, with the
# parent attached for the differencing one.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"

pyread() { # IMG OUT [PARENT]
    $PY - "$@" <<'PYEOF'
import sys, pyvhdi
img, out = sys.argv[1], sys.argv[2]
f = pyvhdi.file(); f.open(img)
if len(sys.argv) > 3:
    p = pyvhdi.file(); p.open(sys.argv[3]); f.set_parent(p)
with open(out, 'wb') as o:
    off = 0
    while off < f.media_size:
        n = min(1 << 20, f.media_size - off)
        o.write(f.read_buffer_at_offset(n, off)); off += n
PYEOF
}

for sub in fixed dynamic; do
    "$VT" create $sub.vhd subformat=$sub,size=9M
    "$VT" write $sub.vhd 512 3072 0x61
    "$VT" write $sub.vhd 2097152 1048576 0x62
    "$VT" write $sub.vhd 8388608 4096 0x63
    vhdiinfo $sub.vhd > info.txt || fail "vhdiinfo failed on $sub"
    grep -qi "Disk type.*$sub" info.txt || { cat info.txt; fail "vhdiinfo: type of $sub"; }
    grep -q "($(vsize $sub.vhd) bytes)" info.txt || { cat info.txt; fail "vhdiinfo: size"; }
    pyread $sub.vhd $sub.lib
    cmp $sub.lib <("$VT" cat $sub.vhd) || fail "libvhdi reads vdk's $sub image differently"
done

# Differencing child of the dynamic image: partial-block writes (copied
# from the parent), a whole block, and an untouched region.
"$VT" create child.vhd backing_file=dynamic.vhd,backing_fmt=vpc
"$VT" write child.vhd 1024 1024 0x71
"$VT" write child.vhd 4194304 2097152 0x72
"$VT" write child.vhd 8389120 512 0x73
vhdiinfo child.vhd > info.txt || fail "vhdiinfo failed on the differencing image"
grep -qi "Disk type.*Differential" info.txt || { cat info.txt; fail "vhdiinfo: type"; }
grep -q "Parent filename.*dynamic.vhd" info.txt || { cat info.txt; fail "vhdiinfo: parent"; }
puuid=$($PY -c "import pyvhdi,sys; f=pyvhdi.file(); f.open('dynamic.vhd'); print(f.identifier)")
grep -q "Parent identifier.*$puuid" info.txt || { cat info.txt; fail "vhdiinfo: parent UUID"; }
pyread child.vhd child.lib dynamic.vhd
cmp child.lib <("$VT" cat child.vhd) || fail "libvhdi reads vdk's differencing image differently"
# and the child really differs from its parent where it was written
cmp -s child.lib dynamic.lib && fail "child reads like its parent"
echo "vhd libvhdi ok"
