#!/bin/bash
# SPDX-License-Identifier: MIT
# The VHDX log.  A writer (vdk-nbd, fed by qemu-io over NBD) is SIGKILLed
# after flushed writes that allocated blocks, so the image keeps a log to
# replay.  Then:
#  - qemu-img refuses to open it read-only, as it does for Windows images;
#  - vdk opens it read-only, replays the log in memory and does not write
#    the file; with the BAT wiped in place, only the log can give the data
#    back, and vdk's reading equals qemu-img's repair of a copy;
#  - a read-write open (check -r all) replays it in place: qemu-img then
#    opens it and finds it clean, and the data is the same.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"

pattern_raw src.raw 20M
"$VDK_IMG" convert -f raw -O vhdx -o block_size=1M src.raw k.vhdx
kill_writer k.vhdx "write -P 0x55 3M 2M" "write -P 0x66 10M 4k"
qemu-img info -f vhdx k.vhdx >/dev/null 2>err.txt && fail "qemu-img opened an image with a log"
grep -q "replay" err.txt || { cat err.txt; fail "qemu-img: unexpected error"; }

# expected guest data
cp src.raw expect.raw
$PY - expect.raw <<'PYEOF'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(3 << 20); f.write(b'\x55' * (2 << 20))
    f.seek(10 << 20); f.write(b'\x66' * 4096)
PYEOF

# wipe the BAT in place (its first 4 KiB): only the log has it now
bat=$(vhdx_region k.vhdx bat)
dd if=/dev/zero of=k.vhdx bs=4096 seek=$((bat / 4096)) count=1 conv=notrunc status=none

# read-only: replayed in memory, file untouched
cp k.vhdx before.vhdx
"$VDK_IMG" convert -f vhdx -O raw k.vhdx ro.raw 2>warn.txt
grep -q "replayed in memory" warn.txt || fail "no warning about the in-memory replay"
same_file k.vhdx before.vhdx
same_file ro.raw expect.raw
"$VDK_IMG" check -f vhdx k.vhdx >/dev/null 2>&1 && fail "read-only check ignores the log"
same_file k.vhdx before.vhdx

# qemu-img's repair of a copy gives the same data
cp k.vhdx q.vhdx
qrc=0; qemu-img check -r all -f vhdx q.vhdx >q.out 2>q.err || qrc=$?
qemu-img convert -f vhdx -O raw q.vhdx q.raw
same_file q.raw expect.raw

# read-write open replays in place
# counted as a repaired corruption, without a message: qemu-img's output
vrc=0; "$VDK_IMG" check -r all -f vhdx k.vhdx >v.out 2>v.err || vrc=$?
grep -q "^    1 corruptions" v.out || { cat v.out v.err; fail "replay not counted"; }
[ "$qrc" = "$vrc" ] && cmp -s q.out v.out && cmp -s q.err v.err ||
    { cat q.out q.err v.out v.err; fail "check -r all of the log: vdk-img differs from qemu-img"; }
qemu-img check -q -f vhdx k.vhdx || fail "qemu-img finds errors after vdk's replay"
qemu-img compare -q -f vhdx -F raw k.vhdx expect.raw || fail "replayed image differs"
qemu-io -f vhdx -c "write -P 0x12 15M 1M" k.vhdx >/dev/null || fail "qemu-io cannot write after replay"

# a damaged log entry is not replayed (its checksum fails); the image opens
cp before.vhdx bad.vhdx
log=$($PY -c "
import struct; f=open('bad.vhdx','rb').read()
h=max((struct.unpack_from('<Q',f,o+8)[0],o) for o in (65536,131072))[1]
print(struct.unpack_from('<Q',f,h+72)[0])")
$PY - bad.vhdx "$log" <<'PYEOF'
import sys
f, log = sys.argv[1], int(sys.argv[2])
with open(f, 'r+b') as fh:
    fh.seek(log); d = bytearray(fh.read(1 << 20))
    for i in range(0, len(d), 4096):
        if d[i:i + 4] == b'loge':
            d[i + 100] ^= 0xff
    fh.seek(log); fh.write(d)
PYEOF
cp bad.vhdx bad.before
"$VDK_IMG" info -f vhdx bad.vhdx >/dev/null || fail "image with a damaged log refused"
same_file bad.vhdx bad.before
echo "vhdx log ok"
