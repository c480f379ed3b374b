#!/bin/bash
# SPDX-License-Identifier: MIT
# Parallels interop with qemu-img and qemu-io, both ways:
#  - vdk creates byte-identical images to qemu-img's (no UUIDs here);
#  - vdk reads qemu's images byte-exact, qemu reads vdk's byte-exact and
#    finds them clean, and qemu-io still writes into them;
#  - both magics read; map, info, check output agree with qemu-img.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=parallels

for a in 64M 1000000 3G "-o cluster_size=64k 1000000" "-o cluster_size=4k 50M" "-o cluster_size=3000 1M" 300G; do
    qemu-img create -q -f parallels q.img $a
    "$VDK_IMG" create -q -f parallels v.img $a
    same_file q.img v.img
    rm -f q.img v.img
done

pattern_raw src.raw 10M
for cl in 1M 64k; do
    "$VDK_IMG" convert -f raw -O parallels -o cluster_size=$cl src.raw v.img
    qemu-img compare -q -f raw -F parallels src.raw v.img || fail "$cl: qemu reads vdk's convert wrong"
    qemu-img check -q -f parallels v.img || fail "$cl: qemu-img check finds errors"
    "$VT" write v.img 4194304 70000 0x5a
    "$VT" write v.img 1048064 1024 0x3c
    "$VT" zero v.img 0 4096
    [ "$(le32 v.img 44)" = 0 ] || fail "$cl: in-use flag left set after a clean close"
    qemu-img convert -f parallels -O raw v.img v.raw
    cmp <("$VT" cat v.img) v.raw || fail "$cl: qemu and vdk read vdk's writes differently"
    qemu-img check -q -f parallels v.img || fail "$cl: not clean after vdk's writes"
    diff <(qemu-img check -f parallels --output=json v.img) \
         <("$VDK_IMG" check -f parallels --output=json v.img) || fail "$cl: check json differs"
    qemu-io -f parallels -c "write -P 0x77 8M 1M" v.img >/dev/null || fail "$cl: qemu-io cannot write"
    qemu-img convert -f parallels -O raw v.img v.raw
    cmp <("$VT" cat v.img) v.raw || fail "$cl: vdk misreads qemu-io's write"

    qemu-img convert -f raw -O parallels -o cluster_size=$cl src.raw q.img
    qemu-io -f parallels -c "write -P 0x11 5M 12k" -c "write -P 0x22 1023k 3k" q.img >/dev/null
    qemu-img convert -f parallels -O raw q.img q.raw
    "$VDK_IMG" convert -f parallels -O raw q.img vq.raw
    same_file q.raw vq.raw
    "$VDK_IMG" compare -q q.img q.raw || fail "$cl: vdk-img compare differs"
    diff <(qemu-img map -f parallels --output=json q.img) \
         <("$VDK_IMG" map -f parallels --output=json q.img) || fail "$cl: map differs"
    diff <(qemu-img info -f parallels --output=json q.img | grep -v actual-size) \
         <("$VDK_IMG" info -f parallels --output=json q.img | grep -v actual-size) ||
        fail "$cl: info differs"
    rm -f v.img q.img v.raw q.raw vq.raw
done

# The old magic: BAT entries are sector offsets.  Make one from a qemu
# image with 64k clusters: entry * 128 sectors.
qemu-img convert -f raw -O parallels -o cluster_size=64k src.raw old.img
$PY - old.img <<'PYEOF'
import struct, sys
with open(sys.argv[1], 'r+b') as f:
    h = bytearray(f.read(64))
    h[0:16] = b'WithoutFreeSpace'
    n = struct.unpack_from('<I', h, 32)[0]
    f.seek(64); bat = list(struct.unpack('<%dI' % n, f.read(4 * n)))
    bat = [e * 128 for e in bat]
    f.seek(0); f.write(h); f.write(struct.pack('<%dI' % n, *bat))
PYEOF
"$VDK_IMG" info old.img | grep -q "file format: parallels" || fail "old magic not probed"
"$VDK_IMG" compare -q -f parallels old.img src.raw || fail "old magic: vdk reads wrong"
"$VT" write old.img 9437184 4096 0x44
qemu-io -f parallels -c "read -P 0x44 9M 4k" old.img >/dev/null || fail "old magic: qemu misreads vdk's write"
qemu-img check -q -f parallels old.img || fail "old magic: not clean"

# measure counts clusters with data; resize is refused as qemu-img does.
req=$("$VDK_IMG" measure -O parallels src.raw | sed -n 's/^required size: //p')
"$VDK_IMG" convert -O parallels src.raw m.img
[ "$(stat -c %s m.img)" = "$req" ] || fail "measure $req, file $(stat -c %s m.img)"
expect_fail "resize|support" "$VDK_IMG" resize -f parallels m.img 20M
echo "parallels interop ok"
