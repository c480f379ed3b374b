#!/bin/bash
# SPDX-License-Identifier: MIT
# Reserved bits in L1/L2 entries, and the zero flag of a v3 image relabelled
# as v2 (where it is reserved).  qemu-img 7.2 refuses to read such zero
# clusters ("Zero cluster entry found in pre-v3 image") and its check counts
# reserved bits as corruption (exit 2).  vdk must never return the
# clusters' old bytes: reads, map and convert fail with qemu's message,
# check reports a corruption (exit 2), and nothing is written.
. "$(dirname "$0")/common.sh"

patch() { # FILE OFFSET STRUCT-FORMAT VALUE (big endian)
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2],0))
f.write(struct.pack(">"+sys.argv[3], int(sys.argv[4],0) & ((1<<64)-1)))' "$@"
}
field() { # FILE OFFSET STRUCT-FORMAT -> value
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2],0))
fmt=">"+sys.argv[3]; print(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])' "$@"
}

# refused IMG REGEX: every reader fails with REGEX and leaves IMG as it was.
refused() {
    local img=$1 re=$2 sum
    sum=$(md5sum <"$img")
    expect_fail "$re" "$VDK_IMG" convert -O raw "$img" "$T/out.raw"
    expect_fail "$re" "$VDK_IMG" map "$img"
    expect_fail "$re" "$VDK_IMG" map --output=json "$img"
    expect_fail "$re" "$QT" cat "$img" qcow2
    [ "$(md5sum <"$img")" = "$sum" ] || fail "a refused read changed $img"
}

# check_like_qemu IMG REGEX: vdk-img check exits as qemu-img check (2 =
# corruption), or 2 where qemu-img sees nothing (v2 zero flags), and
# names the entry.
check_corrupt() {
    local img=$1 re=$2 rc=0 sum
    sum=$(md5sum <"$img")
    "$VDK_IMG" check "$img" >"$T/check.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] || { cat "$T/check.out" >&2; fail "vdk-img check $img: exit $rc, want 2"; }
    grep -qE -- "$re" "$T/check.out" || { cat "$T/check.out" >&2; fail "check lacks /$re/"; }
    rc=0
    "$VDK_IMG" check --output=json "$img" >"$T/check.json" 2>/dev/null || rc=$?
    [ "$rc" -eq 2 ] || fail "vdk-img check --output=json: exit $rc, want 2"
    grep -q '"corruptions": [1-9]' "$T/check.json" || { cat "$T/check.json" >&2; fail "json corruptions"; }
    [ "$(md5sum <"$img")" = "$sum" ] || fail "check without -r changed $img"
}

# ---- v3 image with zero clusters, relabelled v2 ----
qemu-img create -q -f qcow2 "$T/v3.qcow2" 1M
qio -c "write -P 0xab 0 128k" -c "write -z 0 64k" -c "write -z 256k 64k" "$T/v3.qcow2"
cp "$T/v3.qcow2" "$T/v2.qcow2"
patch "$T/v2.qcow2" 4 I 2
# qemu's behaviour, the reference: reads fail, check sees nothing.
if qemu-img convert -O raw "$T/v2.qcow2" "$T/q.raw" 2>"$T/q.err"; then
    fail "qemu-img reads the relabelled image (the test's premise)"
fi
grep -q 'Zero cluster entry found in pre-v3 image' "$T/q.err" || fail "qemu-img's message changed"
refused "$T/v2.qcow2" 'Zero cluster entry found in pre-v3 image \(L2 offset: 0x[0-9a-f]+, L2 index: 0\)'
check_corrupt "$T/v2.qcow2" 'Zero cluster entry found in pre-v3 image'
# The zero flag without a host cluster (write -z on an unallocated cluster).
cp "$T/v2.qcow2" "$T/v2b.qcow2"
L1=$(field "$T/v2b.qcow2" 40 Q)
L2=$(( $(field "$T/v2b.qcow2" "$L1" Q) & 0x00fffffffffffe00 ))
patch "$T/v2b.qcow2" "$L2" Q 0   # cluster 0 unallocated: only cluster 4 is ZERO_PLAIN
refused "$T/v2b.qcow2" 'Zero cluster entry found in pre-v3 image \(L2 offset: 0x[0-9a-f]+, L2 index: 0x4\)'
check_corrupt "$T/v2b.qcow2" 'Zero cluster entry found in pre-v3 image'
# A write open refuses the affected cluster rather than writing beside it.
cp "$T/v2.qcow2" "$T/v2w.qcow2"
expect_fail 'Zero cluster entry found in pre-v3 image|Input/output' \
    "$QT" io "$T/v2w.qcow2" write 0 4096
echo "ok v2 zero flag"

# ---- reserved bits in L2 and L1 entries (any version) ----
for ver in 3 2; do
    qemu-img create -q -f qcow2 -o compat=$([ $ver = 3 ] && echo 1.1 || echo 0.10) "$T/r.qcow2" 1M
    qio -c "write -P 0xab 0 128k" "$T/r.qcow2"
    L1=$(field "$T/r.qcow2" 40 Q)
    L2=$(( $(field "$T/r.qcow2" "$L1" Q) & 0x00fffffffffffe00 ))
    E1=$(field "$T/r.qcow2" $((L2 + 8)) Q)
    for bit in 57 61 1 8; do
        cp "$T/r.qcow2" "$T/rb.qcow2"
        patch "$T/rb.qcow2" $((L2 + 8)) Q $((E1 | (1 << bit)))
        rc=0; qemu-img check "$T/rb.qcow2" >"$T/q.out" 2>&1 || rc=$?
        [ "$rc" -eq 2 ] && grep -q 'reserved bits set' "$T/q.out" ||
            { cat "$T/q.out" >&2; fail "qemu-img check (the premise): exit $rc"; }
        refused "$T/rb.qcow2" 'L2 entry 0x[0-9a-f]+ has reserved bits set'
        check_corrupt "$T/rb.qcow2" 'ERROR found l2 entry with reserved bits set: [0-9a-f]+'
    done
    if [ $ver = 2 ]; then continue; fi
    E0=$(field "$T/r.qcow2" "$L1" Q)
    cp "$T/r.qcow2" "$T/rb.qcow2"
    patch "$T/rb.qcow2" "$L1" Q $((E0 | (1 << 58)))
    rc=0; qemu-img check "$T/rb.qcow2" >"$T/q.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] && grep -q 'L1 entry with reserved bits set' "$T/q.out" ||
        { cat "$T/q.out" >&2; fail "qemu-img check L1 (the premise): exit $rc"; }
    refused "$T/rb.qcow2" 'L1 entry 0x[0-9a-f]+ has reserved bits set'
    check_corrupt "$T/rb.qcow2" 'ERROR found L1 entry with reserved bits set: [0-9a-f]+'
done
echo "ok reserved bits"

# ---- extended L2 bitmaps qemu-img check calls corrupt (exit 2) ----
# A subcluster both allocated and zero in an allocated cluster, and a
# compressed cluster with a non-zero bitmap (found by fuzz-qcow2-tables'
# structure-aware mutator; vdk's check used to pass both).
ext_l2_bitmap() { # IMG REGEX: set bits 0 and 32 of cluster 0's bitmap
    local img=$1 re=$2 rc=0
    L1=$(field "$img" 40 Q)
    L2=$(( $(field "$img" "$L1" Q) & 0x00fffffffffffe00 ))
    patch "$img" $((L2 + 8)) Q $(( $(field "$img" $((L2 + 8)) Q) | 1 | (1 << 32) ))
    qemu-img check "$img" >"$T/q.out" 2>&1 || rc=$?
    [ "$rc" -eq 2 ] && grep -qE -- "$re" "$T/q.out" ||
        { cat "$T/q.out" >&2; fail "qemu-img check (the premise): exit $rc"; }
    check_corrupt "$img" "$re"
}
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=16k "$T/x.qcow2" 1M
qio -c "write -P 0xab 0 3k" "$T/x.qcow2"
ext_l2_bitmap "$T/x.qcow2" 'ERROR offset=[0-9a-f]+: Allocated cluster has corrupted subcluster allocation bitmap'
head -c 65536 /dev/zero | tr '\0' 'q' >"$T/q.raw"
qemu-img convert -c -f raw -O qcow2 -o extended_l2=on,cluster_size=16k "$T/q.raw" "$T/c.qcow2"
ext_l2_bitmap "$T/c.qcow2" 'ERROR compressed cluster 0 with non-zero subcluster allocation bitmap'
echo "ok extended L2 bitmaps"
