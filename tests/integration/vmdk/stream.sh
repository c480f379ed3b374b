#!/bin/bash
# SPDX-License-Identifier: MIT
# streamOptimized both ways:
#  - vdk's stream (convert, with and without -c, several worker counts)
#    reads back byte-exact in qemu-img, passes its check, and has header
#    version 3, compressed grains with markers, a footer and an
#    end-of-stream marker; vmdkinfo reads it;
#  - qemu-img's stream and python3-vmdkstream's (VMDKstream.convert_to_stream;
#    the package installs no command and cannot read a VMDK) read back
#    byte-exact in vdk;
#  - the grains vdk writes are zlib's bytes for the same grain (qemu's).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

head -c 3M /dev/urandom > src.raw
yes "stream optimized grain" | head -c 2M >> src.raw
truncate -s 20M src.raw
dd if=/dev/urandom of=src.raw bs=64k seek=200 count=3 conv=notrunc status=none
printf 'tail' | dd of=src.raw bs=1 seek=$(( 20 * 1048576 - 4 )) conv=notrunc status=none

for args in "" "-c" "-c -m 1" "-W -m 4"; do
    rm -f v.vmdk
    "$VDK_IMG" convert $args -O vmdk -o subformat=streamOptimized src.raw v.vmdk
    qemu-img compare -q -f raw -F vmdk src.raw v.vmdk || fail "convert $args: qemu reads other data"
    qemu-img check -q v.vmdk || fail "convert $args: qemu-img check"
    "$VDK_IMG" check -q v.vmdk || fail "convert $args: vdk check"
    h=$(hdr v.vmdk)
    [ "${h:8:8}" = 03000000 ] || fail "header version is not 3"
    [ "${h:112:16}" = ffffffffffffffff ] || fail "the header does not point at the footer"
    # footer marker, footer (KDMV), end-of-stream marker at the end
    tail -c 1536 v.vmdk | head -c 16 | od -An -tx1 | tr -d ' \n' |
        grep -qx 01000000000000000000000003000000 || fail "no footer marker"
    [ "$(tail -c 1024 v.vmdk | head -c 4)" = KDMV ] || fail "no footer"
    [ "$(tail -c 512 v.vmdk | tr -d '\0' | wc -c)" = 0 ] || fail "no end-of-stream marker"
    vmdkinfo v.vmdk | grep -q 'Stream optimized' || fail "vmdkinfo does not read vdk's stream"
done
[ "$(desc v.vmdk | grep createType)" = 'createType="streamOptimized"' ] || fail "createType"

# Grain 0: same place, same lba, a zlib stream of the same data and about
# the same size as qemu-img's (with libdeflate the bytes differ from zlib's;
# without it they are qemu's very bytes)
qemu-img convert -O vmdk -o subformat=streamOptimized src.raw q.vmdk
"$VDK_IMG" convert -m 1 -O vmdk -o subformat=streamOptimized src.raw v.vmdk
$PY - q.vmdk v.vmdk <<'PYEOF'
import struct, sys, zlib
g = []
for name in sys.argv[1:3]:
    d = open(name, 'rb').read()
    off = 128 * 512                    # both put the first grain at the overhead
    lba, size = struct.unpack('<QI', d[off:off + 12])
    g.append((lba, size, zlib.decompress(d[off + 12:off + 12 + size])))
(ql, qs, qd), (vl, vs, vd) = g
assert ql == vl == 0 and qd == vd, "grain 0 differs from qemu's"
assert abs(vs - qs) <= qs // 20 + 64, "grain 0: %d bytes, qemu %d" % (vs, qs)
PYEOF

# qemu's stream and VMDKstream's read back byte-exact through vdk
cmp <("$VT" cat q.vmdk) src.raw || fail "vdk misreads qemu-img's streamOptimized image"
"$VDK_IMG" compare -q -f vmdk -F raw q.vmdk src.raw || fail "vdk compare"
$PY -c 'import sys, VMDKstream; VMDKstream.convert_to_stream(sys.argv[1], sys.argv[2])' \
    src.raw p.vmdk
cmp <("$VT" cat p.vmdk) src.raw || fail "vdk misreads VMDKstream's image"
"$VDK_IMG" convert -O qcow2 p.vmdk p.qcow2
qemu-img compare -q -F raw p.qcow2 src.raw || fail "VMDKstream -> qcow2 differs"

# an empty stream created by vdk opens everywhere
"$VDK_IMG" create -q -f vmdk -o subformat=streamOptimized e.vmdk 1G
qemu-img check -q e.vmdk || fail "empty stream: qemu-img check"
qemu-img compare -q e.vmdk <(true) 2>/dev/null || qemu-img info e.vmdk >/dev/null ||
    fail "qemu cannot open an empty stream"
vmdkinfo e.vmdk >/dev/null || fail "vmdkinfo cannot open an empty stream"

# Writes to a finished stream (footer and EOS at the end, VMware's layout).
# qemu-io refuses to overwrite an allocated grain ("Could not write to
# allocated cluster for streamOptimized") and appends other grains after
# the EOS marker, after which qemu itself finds no footer ("Invalid
# footer"); see vdk-vmdk(7), also for where qemu puts a grain whose table
# does not exist yet.  vdk stores every write as a new compressed
# grain where the footer was, a new grain table (with its marker) when the
# write needs one, and the footer and EOS after them: qemu-img, vmdkinfo
# and vdk read the result.
head -c 2M /dev/urandom > w.raw; truncate -s 100M w.raw
"$VDK_IMG" convert -O vmdk -o subformat=streamOptimized w.raw w.vmdk
cp w.vmdk wq.vmdk
expect_fail 'Could not write to allocated cluster' qemu-io -f vmdk -c 'write -P 0x11 0 64k' wq.vmdk
qemu-io -f vmdk -c 'write -P 0x22 4M 64k' wq.vmdk >/dev/null
expect_fail 'Invalid footer' qemu-img info wq.vmdk
expect_fail 'no valid footer' "$VDK_IMG" info wq.vmdk
"$VT" write w.vmdk 0 65536 0x11              # an allocated grain
"$VT" write w.vmdk 83886080 70000 0x22       # a new grain table
"$VT" write w.vmdk 4194304 512 0x33          # a grain in an existing table
$PY - w.raw <<'PYEOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    for o, n, v in ((0, 65536, 0x11), (83886080, 70000, 0x22), (4194304, 512, 0x33)):
        f.seek(o); f.write(bytes([v]) * n)
PYEOF
qemu-img check -q w.vmdk || fail "written stream: qemu-img check"
qemu-img compare -q -f vmdk -F raw w.vmdk w.raw || fail "written stream: qemu-img reads it wrong"
cmp <("$VT" cat w.vmdk) w.raw || fail "written stream: vdk reads it wrong"
vmdkinfo w.vmdk >/dev/null || fail "written stream: vmdkinfo"
"$VDK_IMG" check -q w.vmdk || fail "written stream: vdk-img check"

# vdk info of a stream
"$VDK_IMG" info --output=json v.vmdk | grep -q '"compressed": true' || fail "info: compressed"
echo ok
