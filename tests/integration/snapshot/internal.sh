#!/bin/bash
# SPDX-License-Identifier: MIT
# qcow2 internal snapshots against the real qemu-img and qemu-io: vdk
# creates, lists, applies, reads and deletes snapshots that QEMU then
# reads, and the other way round; `qemu-img check` stays clean after every
# operation; bad snapshot tables give clean errors and no writes.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/snapshot/common.sh"

one_layout() {
    local opts=$1 img=$T/a.qcow2
    rm -f "$T"/*.qcow2 "$T"/*.raw "$T"/*.ref
    qemu-img create -q -f qcow2 -o "$opts" "$img" 8M
    qio -c 'write -P 1 0 3M' -c 'write -c -P 7 4M 64k' -c 'write -z 5M 128k' "$img"
    qemu-img convert -O raw "$img" "$T/s1.ref"

    # vdk creates; QEMU lists and reads it.
    "$VDK_IMG" snapshot -c s1 "$img" || fail "$opts: vdk snapshot -c"
    clean "$img" "vdk snapshot -c ($opts)"
    qemu-img snapshot -l "$img" | grep -q ' s1 ' || fail "$opts: qemu-img does not list s1"
    qemu-img convert -O raw -l snapshot.name=s1 "$img" "$T/q.raw"
    same_file "$T/q.raw" "$T/s1.ref"

    # Writes after the snapshot copy the shared clusters (QEMU's and vdk's
    # write paths), the snapshot keeps its data.
    qio -c 'write -P 2 1M 2M' -c 'write -P 3 4M 64k' "$img"
    write_through_vdk "$img"
    clean "$img" "writes over a snapshot ($opts)"
    qemu-img convert -O raw "$img" "$T/cur.ref"
    cmp -s "$T/cur.ref" "$T/s1.ref" && fail "$opts: writes did not change the image"
    vdk_snap_raw "$img" snapshot.name=s1 "$T/v.raw"
    same_file "$T/v.raw" "$T/s1.ref"
    vdk_snap_raw "$img" snapshot.id=1 "$T/v.raw"
    same_file "$T/v.raw" "$T/s1.ref"
    vdk_snap_raw "$img" snapshot.id=1,snapshot.name=s1 "$T/v.raw"
    same_file "$T/v.raw" "$T/s1.ref"

    # QEMU creates; vdk lists it exactly as qemu-img does.
    qemu-img snapshot -c q1 "$img"
    "$VDK_IMG" snapshot -l "$img" >"$T/v.lst"
    qemu-img snapshot -l "$img" >"$T/q.lst"
    diff -u "$T/q.lst" "$T/v.lst" >&2 || fail "$opts: snapshot -l differs from qemu-img"
    "$VDK_IMG" info "$img" | sed -n '/^Snapshot list:/,/^Format specific/p' >"$T/v.lst"
    qemu-img info "$img" | sed -n '/^Snapshot list:/,/^Format specific/p' >"$T/q.lst"
    diff -u "$T/q.lst" "$T/v.lst" >&2 || fail "$opts: info snapshot list differs"
    json_snapshots "$VDK_IMG" "$img" >"$T/v.json"
    json_snapshots qemu-img "$img" >"$T/q.json"
    diff -u "$T/q.json" "$T/v.json" >&2 || fail "$opts: JSON snapshots differ"

    # vdk applies QEMU's and its own snapshots.
    qio -c 'write -P 4 0 1M' "$img"
    "$VDK_IMG" snapshot -a q1 "$img" || fail "$opts: vdk snapshot -a q1"
    clean "$img" "vdk snapshot -a q1 ($opts)"
    qemu-img convert -O raw "$img" "$T/q.raw"
    same_file "$T/q.raw" "$T/cur.ref"
    "$VDK_IMG" snapshot -a s1 "$img" || fail "$opts: vdk snapshot -a s1"
    clean "$img" "vdk snapshot -a s1 ($opts)"
    qemu-img convert -O raw "$img" "$T/q.raw"
    same_file "$T/q.raw" "$T/s1.ref"
    "$VDK_IMG" convert -O raw "$img" "$T/v.raw"
    same_file "$T/v.raw" "$T/s1.ref"

    # QEMU applies vdk's snapshot after vdk made another one.
    "$VDK_IMG" snapshot -c s2 "$img" || fail "$opts: vdk snapshot -c s2"
    clean "$img" "vdk snapshot -c s2 ($opts)"
    qemu-img snapshot -a q1 "$img"
    qemu-img snapshot -a s2 "$img"
    qemu-img convert -O raw "$img" "$T/q.raw"
    same_file "$T/q.raw" "$T/s1.ref"

    # Deleting: vdk deletes QEMU's, QEMU deletes vdk's; clusters nothing
    # else uses are freed (check reports leaks otherwise).
    "$VDK_IMG" snapshot -d q1 "$img" || fail "$opts: vdk snapshot -d q1"
    clean "$img" "vdk snapshot -d q1 ($opts)"
    qemu-img snapshot -d s2 "$img"
    "$VDK_IMG" snapshot -d 1 "$img" || fail "$opts: vdk snapshot -d by ID"
    clean "$img" "vdk snapshot -d 1 ($opts)"
    [ -z "$(qemu-img snapshot -l "$img")" ] || fail "$opts: snapshots left"
    qemu-img convert -O raw "$img" "$T/q.raw"
    same_file "$T/q.raw" "$T/s1.ref"
    # Every cluster the snapshots held is free again: a rewrite of the
    # image is no larger than a fresh copy plus metadata.
    local used
    used=$(qemu-img check --output=json "$img" | json_field allocated-clusters)
    qemu-img convert -O qcow2 -o "$opts" "$img" "$T/fresh.qcow2"
    local fresh
    fresh=$(qemu-img check --output=json "$T/fresh.qcow2" | json_field allocated-clusters)
    [ "$used" -le "$fresh" ] || fail "$opts: $used clusters used after deletes, fresh copy $fresh"
}

for opts in compat=1.1 compat=0.10 compat=1.1,cluster_size=4k,refcount_bits=64 \
            compat=1.1,extended_l2=on compat=1.1,refcount_bits=8,lazy_refcounts=on; do
    one_layout "$opts"
done

# A snapshot of another disk size: applying it resizes the image.
img=$T/r.qcow2
qemu-img create -q -f qcow2 "$img" 4M
qio -c 'write -P 5 0 4M' "$img"
"$VDK_IMG" snapshot -c small "$img"
qemu-img resize -q "$img" 12M
qio -c 'write -P 6 8M 4M' "$img"
"$VDK_IMG" snapshot -c big "$img"
"$VDK_IMG" snapshot -a small "$img" || fail "apply a smaller snapshot"
clean "$img" "apply a smaller snapshot"
[ "$(qemu-img info --output=json "$img" | json_field virtual-size)" = 4194304 ] ||
    fail "applying a 4M snapshot did not restore the size"
"$VDK_IMG" snapshot -a big "$img" || fail "apply a larger snapshot"
clean "$img" "apply a larger snapshot"
[ "$(qemu-img info --output=json "$img" | json_field virtual-size)" = 12582912 ] ||
    fail "applying a 12M snapshot did not restore the size"
qemu-img convert -O raw -l snapshot.name=small "$img" "$T/q.raw"
vdk_snap_raw "$img" snapshot.name=small "$T/v.raw"
same_file "$T/q.raw" "$T/v.raw"

# Errors: duplicate name, unknown snapshot, snapshot of a read-only open.
expect_fail "already exists" "$VDK_IMG" snapshot -c big "$img"
expect_fail "Can't find the snapshot" "$VDK_IMG" snapshot -a nope "$img"
expect_fail "Can't find the snapshot" "$VDK_IMG" snapshot -d nope "$img"
expect_fail "Can't find snapshot" "$VDK_IMG" convert -O raw --image-opts \
    "driver=qcow2,file.filename=$img,snapshot.name=nope" "$T/x.raw"
expect_fail "Can't find snapshot" "$VDK_IMG" convert -O raw --image-opts \
    "driver=qcow2,file.filename=$img,snapshot.id=2,snapshot.name=small" "$T/x.raw"
clean "$img" "failed snapshot commands"
# Refcounts too narrow for another reference: refused before any change.
qemu-img create -q -f qcow2 -o refcount_bits=1 "$T/rc1.qcow2" 1M
qio -c 'write -P 8 0 128k' "$T/rc1.qcow2"
expect_fail "refcount overflow" "$VDK_IMG" snapshot -c one "$T/rc1.qcow2"
clean "$T/rc1.qcow2" "refused snapshot"

# Bad snapshot tables: clean one-line errors and the image is not written.
bad() {
    local what=$1 off=$2 width=$3 val=$4 re=$5
    cp "$img" "$T/bad.qcow2"
    put_be "$T/bad.qcow2" "$off" "$width" "$val"
    cp "$T/bad.qcow2" "$T/bad.orig"
    expect_fail "$re" "$VDK_IMG" snapshot -l "$T/bad.qcow2"
    expect_fail "$re" "$VDK_IMG" snapshot -a small "$T/bad.qcow2"
    expect_fail "$re" "$VDK_IMG" snapshot -c new "$T/bad.qcow2"
    expect_fail "$re" "$VDK_IMG" convert -O raw --image-opts \
        "driver=qcow2,file.filename=$T/bad.qcow2,snapshot.name=small" "$T/x.raw"
    same_file "$T/bad.qcow2" "$T/bad.orig"
    echo "ok: $what" >&2
}
tbl=$(be_at "$img" 64 8)
flen=$(stat -c %s "$img")
bad "table offset past the end" 64 8 $((flen + 65536 * 16)) "beyond end of file"
bad "table offset unaligned" 64 8 $((tbl + 8)) "unaligned|invalid"
bad "entries past the end" 60 4 60000 "beyond end of file|too large"
bad "snapshot L1 past the end" "$tbl" 8 $((flen + 65536 * 16)) "L1 table .* beyond end of file"
bad "snapshot L1 too large" $((tbl + 8)) 4 $((1 << 30)) "L1 table"
bad "extra data too large" $((tbl + 36)) 4 100000 "extra data"
bad "ID too long" $((tbl + 12)) 2 60000 "ID of .* too long|beyond end of file"
echo "internal snapshots: all OK"
