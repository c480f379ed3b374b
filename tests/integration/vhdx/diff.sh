#!/bin/bash
# SPDX-License-Identifier: MIT
# Differencing VHDX (qemu-img cannot create or read these): create with a
# relative and an absolute parent path, read and write through the chain,
# the parent linkage checked, libvhdi reads the child with its parent.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"

pattern_raw src.raw 20M
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M src.raw base.vhdx

# relative parent path
"$VDK_IMG" create -q -f vhdx -b base.vhdx -F vhdx child.vhdx
"$VDK_IMG" info child.vhdx | grep -q "backing file: base.vhdx" || fail "backing file not shown"
"$VDK_IMG" compare -q child.vhdx src.raw || fail "new child does not read as its parent"
"$VT" write child.vhdx 1024 1024 0x71            # partial block: rest from the parent
"$VT" write child.vhdx 4194304 2097152 0x72      # whole blocks
"$VT" write child.vhdx 20970496 512 0x73         # last sector
"$VT" zero child.vhdx 8388608 1048576            # a zero block hides the parent
"$VT" cat child.vhdx > child.raw
cp src.raw expect.raw
$PY - expect.raw <<'PYEOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    for off, n, v in ((1024, 1024, 0x71), (4194304, 2097152, 0x72), (20970496, 512, 0x73),
                      (8388608, 1048576, 0)):
        f.seek(off); f.write(bytes([v]) * n)
PYEOF
same_file child.raw expect.raw
"$VDK_IMG" compare -q base.vhdx src.raw || fail "writes to the child changed the parent"
"$VDK_IMG" check -q child.vhdx || fail "child not clean"

# libvhdi: type, parent identifier = the parent's data write GUID, data
vhdiinfo child.vhdx > info.txt
grep -qi "Disk type.*Differential" info.txt || { cat info.txt; fail "vhdiinfo: type"; }
pid=$(/usr/bin/python3 -c "import pyvhdi; f=pyvhdi.file(); f.open('child.vhdx'); print(f.parent_identifier)")
bid=$($PY -c "
import struct,sys,uuid
f=open('base.vhdx','rb').read()
h=[(struct.unpack_from('<Q',f,o+8)[0],f[o+32:o+48]) for o in (65536,131072)]
print(uuid.UUID(bytes_le=max(h)[1]))")
[ "$pid" = "$bid" ] || fail "libvhdi sees parent $pid, the parent's GUID is $bid"
pyread child.vhdx child.lib base.vhdx
same_file child.lib expect.raw

# absolute parent path, from another directory
mkdir sub
"$VDK_IMG" create -q -f vhdx -b "$T/base.vhdx" -F vhdx sub/abs.vhdx
"$VT" write sub/abs.vhdx 0 512 0x61
(cd / && "$VDK_IMG" compare -q "$T/sub/abs.vhdx" "$T/child.vhdx") && fail "abs child equals child"
(cd / && "$VT" cat "$T/sub/abs.vhdx") | cmp -s - <(head -c 512 /dev/zero | tr '\0' 'a'; tail -c +513 src.raw) ||
    fail "absolute-path child reads wrong"

# the parent changes: the linkage no longer matches, the child is refused
cp base.vhdx base.orig
"$VT" write base.vhdx 0 512 0x99
expect_fail "data write GUID" "$VDK_IMG" convert -O raw child.vhdx x.raw
cp base.orig base.vhdx
"$VDK_IMG" convert -O raw child.vhdx x.raw || fail "restored parent refused"
# a missing parent is a clean error
mv base.vhdx gone.vhdx
expect_fail "base.vhdx" "$VDK_IMG" convert -O raw child.vhdx x.raw
mv gone.vhdx base.vhdx

# convert flattens the chain; commit writes the child into the parent
"$VDK_IMG" convert -O raw child.vhdx flat.raw
same_file flat.raw expect.raw
"$VDK_IMG" convert -O qcow2 child.vhdx flat.qcow2
qemu-img compare -q -f qcow2 -F raw flat.qcow2 expect.raw || fail "vhdx chain -> qcow2"

# A partially present block (as Hyper-V writes them): block 0 of the child
# holds 0x71 everywhere, its state becomes PARTIALLY_PRESENT and a sector
# bitmap (appended at the end of the file) marks only sectors 0-7 and
# 100-103 present; the other sectors read from the parent.  vdk and libvhdi
# agree; a write into the block makes it fully present with the same data.
"$VDK_IMG" create -q -f vhdx -o block_size=1M -b base.vhdx -F vhdx part.vhdx
"$VT" write part.vhdx 0 1048576 0x71
make_partial part.vhdx
$PY - src.raw part-expect.raw <<'PYEOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
for s in list(range(0, 8)) + list(range(100, 104)):
    d[s * 512:(s + 1) * 512] = b'\x71' * 512
open(sys.argv[2], 'wb').write(d)
PYEOF
"$VT" cat part.vhdx > part.raw
same_file part.raw part-expect.raw
pyread part.vhdx part.lib base.vhdx
same_file part.lib part-expect.raw
"$VDK_IMG" map --output=json part.vhdx | head -3 | grep -q '"length": 4096' || fail "map of a partial block"
"$VT" write part.vhdx 2048 512 0x72
$PY - part-expect.raw <<'PYEOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(2048); f.write(b'\x72' * 512)
PYEOF
"$VT" cat part.vhdx | cmp -s - part-expect.raw || fail "write into a partially present block"
"$VDK_IMG" check -q part.vhdx || fail "partial block image not clean"
echo "vhdx diff ok"
