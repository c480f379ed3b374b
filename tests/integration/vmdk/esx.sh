#!/bin/bash
# SPDX-License-Identifier: MIT
# ESX layouts qemu-img reads but cannot create, built here by hand:
#  - vmfs: a descriptor with VMFS (flat) extents;
#  - vmfsSparse: a COWD sparse extent (4096-entry grain tables) as an ESX
#    snapshot delta, alone and under a vmfs parent;
#  - RDONLY, NOACCESS and ZERO extent lines (qemu-img skips those lines,
#    vdk keeps them in the disk).
# vdk must read what qemu-img reads, byte for byte.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

head -c 4M /dev/urandom > base-flat.vmdk
cat > base.vmdk <<'D'
# Disk DescriptorFile
version=1
encoding="UTF-8"
CID=12345678
parentCID=ffffffff
isNativeSnapshot="no"
createType="vmfs"

# Extent description
RW 8192 VMFS "base-flat.vmdk"

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "1"
ddb.virtualHWVersion = "13"
D
cmp <("$VT" cat base.vmdk) base-flat.vmdk || fail "vmfs extent misread"
qemu-img compare -q -f vmdk -F vmdk base.vmdk base.vmdk
"$VDK_IMG" info base.vmdk | grep -q 'create type: vmfs' || fail "info: vmfs"

# A COWD delta: 8192 sectors, 8-sector grains, one GD entry, GT at
# sector 4, grains from sector 40; every other grain of the first 64 set.
$PY - <<'PYEOF'
import struct, os
sectors, gran = 8192, 8
hdr = struct.pack('<4sIIIIIIIIII', b'COWD', 1, 3, sectors, gran, 1, 1, 0, 0, 0, 0)
img = bytearray(hdr + bytes(512 - len(hdr)))
img += struct.pack('<I', 4) + bytes(508)           # GD at sector 1: GT at sector 4
img += bytes(512 * 2)                              # sectors 2, 3
gt = [0] * 4096
data = bytearray()
nxt = 40
for g in range(0, 64, 2):
    gt[g] = nxt
    data += bytes([g + 1]) * (gran * 512)
    nxt += gran
img += struct.pack('<4096I', *gt)                  # sectors 4..35
img += bytes(512 * 4)                              # to sector 40
img += data
open('delta-delta.vmdk', 'wb').write(img)
PYEOF
cat > delta.vmdk <<'D'
# Disk DescriptorFile
version=1
CID=abcdef01
parentCID=12345678
createType="vmfsSparse"
parentFileNameHint="base.vmdk"

RW 8192 VMFSSPARSE "delta-delta.vmdk"

ddb.adapterType = "lsilogic"
D
# (qemu-img 7.2 lists a VMFSSPARSE extent twice and shows 8 MiB; its
# first 4 MiB are the disk)
qemu-img convert -f vmdk -O raw delta.vmdk q.raw
cmp <("$VT" cat delta.vmdk) <(head -c 4M q.raw) || fail "vmfsSparse delta over a vmfs parent misread"
"$VDK_IMG" info delta.vmdk | grep -q '^backing file: base.vmdk' || fail "delta: parent"
[ "$("$VDK_IMG" map --output=json delta.vmdk | grep -c '"depth": 0, "present": true, "zero": false, "data": true')" = 32 ] ||
    fail "delta: map does not show its 32 grains"
# writes into the COWD extent, read back by qemu
"$VT" write delta.vmdk 1048576 70000 0x6b
qemu-img convert -f vmdk -O raw delta.vmdk q.raw
cmp <("$VT" cat delta.vmdk) <(head -c 4M q.raw) || fail "vmfsSparse after vdk's write"
# the COWD file opened directly
NO_BACKING=1 "$VT" cat delta-delta.vmdk >/dev/null || fail "COWD extent alone"

# RDONLY / NOACCESS / ZERO lines (each extent its own file: a file named
# twice is refused)
head -c $((4096 * 512)) base-flat.vmdk > m1.img
tail -c +$((4096 * 512 + 1)) base-flat.vmdk > m2.img
cp m1.img m3.img
cat > mixed.vmdk <<'D'
# Disk DescriptorFile
version=1
CID=1
parentCID=ffffffff
createType="twoGbMaxExtentFlat"
RW 2048 FLAT "m1.img" 0
RDONLY 2048 FLAT "m2.img" 0
RW 1024 ZERO
NOACCESS 8 FLAT "m3.img" 4000
D
[ "$("$VDK_IMG" info --output=json mixed.vmdk | sed -n 's/^    "virtual-size": \([0-9]*\).*/\1/p')" = \
  $(( (2048 + 2048 + 1024 + 8) * 512 )) ] || fail "mixed: size"
cmp <("$VT" cat mixed.vmdk 2>/dev/null | head -c $((4096 * 512))) <(head -c $((2048 * 512)) base-flat.vmdk; tail -c +$((4096 * 512 + 1)) base-flat.vmdk | head -c $((2048 * 512))) ||
    fail "mixed: RW and RDONLY extents"
"$VT" cat mixed.vmdk >/dev/null 2>&1 && fail "NOACCESS extent was read"
expect_fail "Permission denied" "$VT" write mixed.vmdk $((2048 * 512)) 512 0x1
"$VT" write mixed.vmdk 0 512 0x2
echo ok
