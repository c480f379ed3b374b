#!/bin/bash
# SPDX-License-Identifier: MIT
# The messages scripts match on, byte for byte as qemu-img 7.2 prints them
# (program name aside): "Could not open", "Image is not in qcow2 format",
# "Backing file specified without backing format" (with the format it
# detected), a backing format missing from rebase, "Unsupported qcow2
# version".  (Lock messages: locks.sh.)
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"
qimg create -q -f raw r.raw 1M
qimg create -q -f qcow2 b.qcow2 1M

same_error "info of a missing file" info nonexist.img
same_error "info -f qcow2 of raw" info -f qcow2 r.raw
same_error "convert -f qcow2 of raw" convert -f qcow2 r.raw out.raw
[ ! -e out.raw ] || fail "convert left out.raw"
same_error "create -b missing" create -f qcow2 -b nonexist.qcow2 o.qcow2
same_error "create -u -b without -F" create -f qcow2 -u -b b.qcow2 o.qcow2 1M
[ ! -e o.qcow2 ] || fail "create without -F made o.qcow2"
# qemu-img ends its "Detected format" hint without a newline; vdk-img ends
# the line.
for base in r.raw b.qcow2; do
    fmt=$(qimg info "$base" | sed -n 's/^file format: //p')
    rc=0; "$VDK_IMG" create -f qcow2 -b "$base" o.qcow2 2>v.err || rc=$?
    [ "$rc" = 1 ] || fail "create -b $base without -F exited $rc"
    printf '%s\n' "vdk-img: o.qcow2: Backing file specified without backing format" \
        "Detected format of $fmt." | cmp -s - v.err || { cat v.err; fail "create -b $base"; }
    rc=0; qimg create -f qcow2 -b "$base" o.qcow2 2>q.err || rc=$?
    [ "$rc" = 1 ] && [ "$(sed 's/^qemu-img/vdk-img/' q.err)" = "$(cat v.err)" ] ||
        fail "qemu-img says otherwise for create -b $base"
done
qimg create -q -f qcow2 top.qcow2 1M
cp top.qcow2 top2.qcow2
same_error "rebase -u without -F" rebase -u -b b.qcow2 top.qcow2
same_error "rebase without -F" rebase -b b.qcow2 top.qcow2
cmp -s top.qcow2 top2.qcow2 || fail "a refused rebase changed the image"
cp top.qcow2 v5.qcow2
printf '\0\0\0\5' | dd of=v5.qcow2 bs=1 seek=4 conv=notrunc status=none
same_error "qcow2 version 5" info v5.qcow2
same_error "qcow2 version 5, -f" info -f qcow2 v5.qcow2
echo ok
