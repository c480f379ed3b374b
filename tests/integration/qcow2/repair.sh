#!/bin/bash
# SPDX-License-Identifier: MIT
# check -r all rebuilds damaged refcount structures, as qemu-img does.
# Images made by qemu-img/qemu-io (512 B, 4 KiB and 64 KiB clusters;
# refcount_bits 16, 1 and 64; data, a backing file, an internal snapshot)
# get one damage each: refcount block pointed at a data cluster or at an L2
# table, table entry past the end of the file, unaligned table entry,
# zeroed refcount block, a block whose own refcount is 0, refcount table
# moved onto the L1 table.  Then: check without -r reports
# it (exit 2) and leaves the file byte-identical; -r leaks refuses (exit 1,
# file unchanged); -r all rebuilds (new structures past the old end of the
# file) and qemu-img check is clean, the guest data and the snapshot are
# unchanged, refcount_bits is kept, and qemu-io can still write.  Where
# qemu-img's own repair succeeds, both repairs give the same guest data.
# Every crash state of each repair is the old image or a clean repaired one
# (tests/unit/qcow2/qcow2-repair-crash.c).
. "$(dirname "$0")/common.sh"
RC=${QCOW2_REPAIR_CRASH:-$VDK_BUILD/tests/unit/qcow2/qcow2-repair-crash}
[ -x "$RC" ] || fail "qcow2-repair-crash not built"

# damage KIND IMG: poke the image (qcow2 header fields, big endian).
damage() {
    /usr/bin/python3 - "$@" <<'PY'
import os, struct, sys
kind, path = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
def be64(off):
    f.seek(off); return struct.unpack(">Q", f.read(8))[0]
def put(off, fmt, v):
    f.seek(off); f.write(struct.pack(fmt, v))
f.seek(0); h = f.read(100)
cb = struct.unpack(">I", h[20:24])[0]; cs = 1 << cb
order = struct.unpack(">I", h[96:100])[0]
l1size, l1off, rt = struct.unpack(">IQQ", h[36:56])
M = 0x00fffffffffffe00
def data_cluster():
    for i in range(l1size):
        l2 = be64(l1off + 8 * i) & M
        for j in range(cs // 8 if l2 else 0):
            e = be64(l2 + 8 * j)
            if e & M and not e & (1 << 62):
                return e & M
    sys.exit("no data cluster")
if kind == "rb_data":
    put(rt, ">Q", data_cluster())
elif kind == "rt_eof":
    put(rt, ">Q", (os.path.getsize(path) // cs + 16) * cs)
elif kind == "rt_unaligned":
    put(rt, ">Q", be64(rt) + 256)
elif kind == "rb_l2":
    put(rt, ">Q", be64(l1off) & M)
elif kind == "rb_self0":
    b = be64(rt) // cs; bits = 1 << order; pos = (b % (cs * 8 // bits)) * bits
    f.seek(be64(rt) + pos // 8); byte = f.read(1)[0]
    if bits < 8:
        byte &= ~(((1 << bits) - 1) << (pos % 8))
    f.seek(be64(rt) + pos // 8); f.write(bytes([byte & 0xff] if bits < 8 else bytes(bits // 8)))
elif kind == "rb_zero":
    f.seek(be64(rt)); f.write(bytes(cs))
elif kind == "rt_l1":
    put(48, ">Q", l1off); put(56, ">I", (l1size * 8 + cs - 1) // cs)
elif kind == "rt_offset":
    print(rt)
else:
    sys.exit("unknown damage " + kind)
PY
}

# make NAME CREATE-OPTS SNAPSHOT(yes/no): NAME.qcow2 over base.qcow2.
make() {
    local name=$1 opts=$2 snap=$3 img="$T/$1.qcow2"
    qemu-img create -q -f qcow2 -o "$opts" -b base.qcow2 -F qcow2 "$img" 4M
    qio -c 'write -P 0x22 0 1M' -c 'write -P 0x33 2M 192k' -c 'write -z 1536k 64k' "$img"
    if [ "$snap" = yes ]; then
        qemu-img snapshot -c s1 "$img" || fail "snapshot on $name"
        qio -c 'write -P 0x44 512k 128k' -c 'discard 2M 64k' "$img"
    fi
    qemu_clean "$img"
}

rc_of() { local rc=0; "$@" >"$T/.out" 2>"$T/.err" || rc=$?; echo "$rc"; }

qemu-img create -q -f qcow2 "$T/base.qcow2" 4M
qio -c 'write -P 0x11 0 4M' "$T/base.qcow2"
make c512 cluster_size=512,refcount_bits=16 yes
make c64k cluster_size=65536,refcount_bits=64 yes
make c4k cluster_size=4096,refcount_bits=1 no

n=0
for v in c512 c64k c4k; do
    orig="$T/$v.qcow2"
    bits=$(qemu-img info --output=json "$orig" | grep -o '"refcount-bits": [0-9]*')
    qemu-img convert -O raw "$orig" "$T/guest.raw"
    for d in rb_data rb_l2 rt_eof rt_unaligned rb_zero rb_self0 rt_l1; do
        img="$T/d.qcow2"
        cp "$orig" "$img"
        damage "$d" "$img"
        cp "$img" "$T/damaged.qcow2"
        size0=$(stat -c %s "$img")

        # Crash states of the repair: the old image or a sound new one.
        cp "$T/damaged.qcow2" "$T/c.qcow2"
        "$RC" "$T/c.qcow2" "$T/guest.raw" "$T/crash.qcow2" >"$T/.out" 2>"$T/.err" ||
            { tail -5 "$T/.err" >&2; fail "$v/$d: crash consistency"; }

        # Read-only check: corruption, exit 2, not a byte written.
        rc=$(rc_of "$VDK_IMG" check "$img")
        [ "$rc" = 2 ] || { cat "$T/.err" >&2; fail "$v/$d: check exit $rc, expected 2"; }
        cmp -s "$img" "$T/damaged.qcow2" || fail "$v/$d: check without -r wrote"
        qrc=$(rc_of qemu-img check "$img")
        [ "$qrc" != 0 ] || fail "$v/$d: damage not seen by qemu-img either"

        # -r leaks cannot rebuild: qemu-img's error, nothing written.
        rc=$(rc_of "$VDK_IMG" check -r leaks "$img")
        [ "$rc" = 1 ] || fail "$v/$d: check -r leaks exit $rc, expected 1"
        grep -q "need to rebuild refcount structures" "$T/.err" || fail "$v/$d: -r leaks msg"
        cmp -s "$img" "$T/damaged.qcow2" || fail "$v/$d: check -r leaks wrote"

        # -r all rebuilds, past the old end of the file.
        rc=$(rc_of "$VDK_IMG" check -r all "$img")
        [ "$rc" = 0 ] || { cat "$T/.out" "$T/.err" >&2; fail "$v/$d: repair exit $rc"; }
        grep -q "Rebuilding refcount structure" "$T/.err" || fail "$v/$d: no rebuild"
        grep -q "No errors were found on the image" "$T/.out" || fail "$v/$d: recheck"
        if grep -qE 'AddressSanitizer|runtime error:' "$T/.err"; then
            cat "$T/.err" >&2; fail "$v/$d: sanitizer report"
        fi
        rt=$(damage rt_offset "$img")
        [ "$rt" -ge "$size0" ] || fail "$v/$d: new refcount table at $rt inside the old file"
        qemu_clean "$img"
        qemu-img compare -q "$orig" "$img" || fail "$v/$d: guest data changed"
        info=$(qemu-img info --output=json "$img")
        echo "$info" | grep -q "$bits" || fail "$v/$d: refcount_bits changed"
        if [ "$v" != c4k ]; then
            qemu-img convert -O raw -l snapshot.name=s1 "$orig" "$T/s.want"
            qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/s.got"
            cmp -s "$T/s.want" "$T/s.got" || fail "$v/$d: snapshot data changed"
        fi

        # qemu-img's own repair (it fails on the unaligned entry): same data.
        if [ "$d" != rt_unaligned ]; then
            cp "$T/damaged.qcow2" "$T/q.qcow2"
            qemu-img check -r all "$T/q.qcow2" >/dev/null 2>&1 || fail "$v/$d: qemu repair"
            qemu-img compare -q "$T/q.qcow2" "$img" || fail "$v/$d: repairs differ"
        fi

        # Still writable by qemu, and both checkers stay clean.
        qio -c 'write -P 0x66 3M 256k' -c 'write -P 0x77 100k 8k' "$img"
        qemu-io -f qcow2 -c 'read -P 0x66 3M 256k' -c 'read -P 0x77 100k 8k' \
            -c 'read -P 0x22 200k 64k' "$img" | grep -q "Pattern verification failed" &&
            fail "$v/$d: read back after write"
        qemu_clean "$img"
        rc=$(rc_of "$VDK_IMG" check "$img")
        [ "$rc" = 0 ] || { cat "$T/.err" >&2; fail "$v/$d: vdk check after write: $rc"; }
        n=$((n + 1))
    done
done
echo "repaired $n damaged images"
