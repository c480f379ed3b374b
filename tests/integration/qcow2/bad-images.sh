#!/bin/bash
# SPDX-License-Identifier: MIT
# Damaged images (qemu-made, patched now) give one clean error line, no
# crash, and no write to the image; the corrupt bit and the overlap check
# behave as qemu's.
. "$(dirname "$0")/common.sh"

# patch FILE OFFSET STRUCT-FORMAT VALUE  (big endian, python struct)
patch() {
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2],0))
v=int(sys.argv[4],0)
if sys.argv[3]=="Q": v &= (1<<64)-1
f.write(struct.pack(">"+sys.argv[3], v))' "$@"
}
# field FILE OFFSET STRUCT-FORMAT -> value
field() {
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2],0))
fmt=">"+sys.argv[3]; print(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])' "$@"
}
fresh() {
    qemu-img create -q -f qcow2 "$T/b.qcow2" 4M
    qio -c "write -P 0x42 0 128k" "$T/b.qcow2"
}
unchanged_read() { # CMD must fail with REGEX and leave the file as it was
    local re=$1; shift
    cp "$T/b.qcow2" "$T/before"
    expect_fail "$re" "$@"
    cmp -s "$T/b.qcow2" "$T/before" || fail "image modified by failing '$*'"
}
L1=$(qemu-img create -q -f qcow2 "$T/b.qcow2" 4M; field "$T/b.qcow2" 40 Q)

fresh; head -c 50 "$T/b.qcow2" >"$T/short.qcow2"
expect_fail "too short" "$QT" cat "$T/short.qcow2" qcow2
fresh; patch "$T/b.qcow2" 4 I 5
unchanged_read "Unsupported qcow2 version 5" "$QT" cat "$T/b.qcow2" qcow2
for cb in 8 22 200; do
  fresh; patch "$T/b.qcow2" 20 I $cb
  unchanged_read "cluster_bits $cb out of range" "$QT" cat "$T/b.qcow2" qcow2
done
fresh; patch "$T/b.qcow2" 24 Q 0x7fffffffffffffff
unchanged_read "virtual size .* too large" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 24 Q 0x10000000000
unchanged_read "l1_size .* too small" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 40 Q 0x10000000000
unchanged_read "L1 table .* beyond end of file" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 40 Q $((L1 + 8))
unchanged_read "L1 table .* unaligned" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 48 Q 0x10200
unchanged_read "refcount table .* unaligned" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 56 I 0x100000
unchanged_read "refcount_table_clusters .* out of range" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 96 I 7
unchanged_read "refcount_order 7 out of range" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 100 I 0x100000
unchanged_read "header_length .* out of range" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 116 I 0x7ffffff0
unchanged_read "header extension .* past the header" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" 32 I 1
unchanged_read "encrypted" "$QT" cat "$T/b.qcow2" qcow2

# Unknown incompatible bits: named from the image's feature table if it can.
fresh; patch "$T/b.qcow2" 72 Q 0x400
unchanged_read "unsupported qcow2 feature.*unknown bit 10" "$QT" cat "$T/b.qcow2" qcow2
fresh
# Rename the table's bit-4 entry ("extended L2 entries") to bit 20.
off=$(/usr/bin/python3 -c 'import sys; d=open(sys.argv[1],"rb").read(4096); print(d.find(b"extended L2")-1)' "$T/b.qcow2")
patch "$T/b.qcow2" "$off" B 20
patch "$T/b.qcow2" 72 Q 0x100000
unchanged_read "unsupported qcow2 feature.*extended L2 entries" "$QT" cat "$T/b.qcow2" qcow2

# Tables and data pointing outside the file: reads fail cleanly.
fresh; patch "$T/b.qcow2" "$L1" Q 0x8000010000000000
unchanged_read "L2 table .* beyond end of file|Input/output" "$QT" cat "$T/b.qcow2" qcow2
fresh; L2=$(( $(field "$T/b.qcow2" "$L1" Q) & 0x00fffffffffffe00 ))
patch "$T/b.qcow2" "$L1" Q $(( 0x8000000000000000 | L2 + 512 ))
unchanged_read "not cluster aligned|Input/output" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" "$L2" Q 0x8000010000000000
unchanged_read "beyond end of file|Input/output" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" "$L2" Q 0x4000001000000000
unchanged_read "compressed cluster .* out of range|Input/output" "$QT" cat "$T/b.qcow2" qcow2
fresh; patch "$T/b.qcow2" "$L2" Q 0x4000000000030000
unchanged_read "does not decompress|Input/output" "$QT" cat "$T/b.qcow2" qcow2

# Backing loops.
qemu-img create -q -f qcow2 "$T/x.qcow2" 1M
qemu-img create -q -f qcow2 -b x.qcow2 -F qcow2 "$T/y.qcow2"
qemu-img rebase -u -f qcow2 -b y.qcow2 -F qcow2 "$T/x.qcow2"
expect_fail "loop" "$QT" cat "$T/y.qcow2" qcow2

# Corrupt bit: read-only opens work, read-write opens are refused.
fresh; patch "$T/b.qcow2" 72 Q 2
"$QT" cat "$T/b.qcow2" qcow2 >/dev/null 2>&1 || fail "read-only open of a corrupt image"
unchanged_read "corrupt" "$QT" io "$T/b.qcow2" write 0 512

# Metadata overlap: an L2 entry naming the L1 table; a write through it
# fails with EIO and marks the image corrupt.
fresh; patch "$T/b.qcow2" "$L2" Q $(( 0x8000000000000000 | L1 ))
expect_fail "corrupt|Input/output" "$QT" io "$T/b.qcow2" write 0 512
qemu-img info --output=json "$T/b.qcow2" | grep -q '"corrupt": true' ||
    fail "overlapping write did not set the corrupt bit"
[ "$(field "$T/b.qcow2" "$L1" Q)" != 0 ] || fail "L1 table overwritten"

# Dirty bit with lazy refcounts: repaired on a read-write open.
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$T/d.qcow2" 4M
qio -c "write -P 0x11 0 1M" "$T/d.qcow2"
patch "$T/d.qcow2" 72 Q 1
"$QT" io "$T/d.qcow2" write 2M 4096 0x12 || fail "open dirty image"
qemu_clean "$T/d.qcow2"
qemu-img info --output=json "$T/d.qcow2" | grep -q '"dirty-flag": false' || fail "still dirty"

# Unknown autoclear bits are cleared on a read-write open, kept read-only.
fresh; patch "$T/b.qcow2" 88 Q 0x80
"$QT" cat "$T/b.qcow2" qcow2 >/dev/null
[ "$(field "$T/b.qcow2" 88 Q)" = 128 ] || fail "read-only open changed autoclear"
"$QT" io "$T/b.qcow2" write 0 512 || fail "write"
[ "$(field "$T/b.qcow2" 88 Q)" = 0 ] || fail "autoclear bits not cleared"
qemu_clean "$T/b.qcow2"
# Refcount too low (a corruption): reported, then rebuilt by repair.
fresh
RT=$(field "$T/b.qcow2" 48 Q); RB=$(field "$T/b.qcow2" "$RT" Q)
DATA=$(( $(field "$T/b.qcow2" "$L2" Q) & 0x00fffffffffffe00 ))
patch "$T/b.qcow2" $((RB + 2 * (DATA / 65536))) H 0
rc=0; "$QT" check "$T/b.qcow2" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "refcount corruption not reported (rc $rc)"
"$QT" check "$T/b.qcow2" all >/dev/null 2>&1 || fail "repair"
qemu_clean "$T/b.qcow2"

# A refcount block pointing outside the file: read-write opens refuse it,
# repair rebuilds it past the end of the file, data untouched.
fresh
patch "$T/b.qcow2" "$RT" Q 0x7000000
expect_fail "refcount block 0 .* beyond end of file" "$QT" io "$T/b.qcow2" write 0 512
rc=0; "$QT" check "$T/b.qcow2" >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "bad refcount block not reported (rc $rc)"
"$QT" check "$T/b.qcow2" all >/dev/null 2>&1 || fail "refcount block repair"
qemu_clean "$T/b.qcow2"
"$QT" io "$T/b.qcow2" read 0 131072 | tr -d 'B' | cmp -s - /dev/null || fail "data lost in repair"

# Unknown header extensions survive a header rewrite (rebase -u).
fresh
/usr/bin/python3 - "$T/b.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b"); h = f.read(4096)
off = struct.unpack(">I", h[100:104])[0]
while True:
    t, l = struct.unpack(">II", h[off:off + 8])
    if t == 0:
        break
    off += 8 + (l + 7) // 8 * 8
f.seek(off); f.write(struct.pack(">II", 0x12345678, 5) + b"hello\0\0\0" + b"\0" * 8)
PY
"$QT" rebase "$T/b.qcow2" other.qcow2 qcow2 || fail "rebase"
grep -q hello "$T/b.qcow2" || fail "unknown header extension dropped"
qemu-img info "$T/b.qcow2" | grep -q "backing file: other.qcow2" || fail "rebase lost"
echo "bad images OK"
