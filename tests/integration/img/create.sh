#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img create with every raw option beside qemu-img create: the same
# "Formatting" line, and files of the same size and allocation.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

# twin ARGS... (the image name is the last-but-one or last argument, "IMG")
twin() {
    local vargs=() qargs=() a vrc=0 qrc=0
    for a in "$@"; do vargs+=("${a//IMG/v.raw}"); qargs+=("${a//IMG/q.raw}"); done
    rm -f v.raw q.raw
    "$VDK_IMG" create "${vargs[@]}" >v.out 2>v.err || vrc=$?
    qimg create "${qargs[@]}" >q.out 2>q.err || qrc=$?
    [ "$vrc" = 0 ] && [ "$qrc" = 0 ] || { cat v.err q.err; fail "create $* failed ($vrc/$qrc)"; }
    sed 's/v\.raw/q.raw/' v.out | cmp -s - q.out || { diff q.out v.out || true; fail "create $*: output"; }
    [ "$(size_of v.raw)" = "$(size_of q.raw)" ] || fail "create $*: size differs"
    [ "$(alloc v.raw)" = "$(alloc q.raw)" ] ||
        fail "create $*: allocation $(alloc v.raw) vs qemu-img's $(alloc q.raw)"
    # and qemu-img reads ours exactly as its own
    qimg compare -f raw -F raw v.raw q.raw >/dev/null || fail "create $*: contents differ"
}

twin -f raw IMG 4M
twin IMG 1M
twin -f raw IMG 0
twin -f raw IMG 1000
twin -f raw IMG 1.5M
twin -f raw IMG 1G
twin -q -f raw IMG 2M
twin -f raw -o size=3M IMG
twin -f raw -o size=1M,size=2M IMG
twin -f raw -o size=1M -o size=2M IMG
for p in off falloc full; do
    twin -f raw -o preallocation=$p IMG 3M
    twin -f raw -o preallocation=$p,nocow=on IMG 64k
done
twin -f raw -o nocow=off IMG 1M
twin -f raw -o extent_size_hint=0 IMG 1M
twin -f raw -o extent_size_hint=1M IMG 1M
twin -f raw -o extent_size_hint=0,nocow=off,preallocation=off,size=1M IMG
twin -f raw -o preallocation=falloc,nocow=on,extent_size_hint=256k IMG 2M

# Creating over an existing image truncates it, as qemu-img does.
qimg create -q -f raw -o preallocation=full old.raw 8M
"$VDK_IMG" create -q -f raw old.raw 1M
[ "$(size_of old.raw)" = 1048576 ] || fail "re-create kept the old size"
[ "$(alloc old.raw)" -le 65536 ] || fail "re-create kept the old data"

# -o help (with a file name, so the protocol's options are listed too).
same_output "create -o help" create -f raw -o help x.raw
same_output "create -o ?" create -f raw -o '?' x.raw
[ ! -e x.raw ] || fail "-o help created a file"
"$VDK_IMG" create -f raw -o help | grep -q '^  size=' || fail "-o help without file name"

# qcow2 as libvirt's storage driver asks for it (compat=0.10, the backing
# format in -o): the same bytes and the same allocated blocks as qemu-img's,
# since libvirt shows the file's size and allocation.
qimg create -q -f qcow2 base.qcow2 16M
for args in "-o compat=0.10" "-o compat=1.1" "-o cluster_size=2M" "-o cluster_size=4k" \
            "-o preallocation=metadata,compat=0.10" \
            "-b $T/base.qcow2 -o backing_fmt=qcow2,compat=0.10" \
            "-o backing_file=$T/base.qcow2,backing_fmt=qcow2" \
            "-b $T/base.qcow2 -F qcow2 -o backing_fmt=raw"; do
    rm -f v.qcow2 q.qcow2
    # shellcheck disable=SC2086
    "$VDK_IMG" create -q -f qcow2 $args v.qcow2 8M || fail "qcow2 $args: vdk-img create"
    # shellcheck disable=SC2086
    qimg create -q -f qcow2 $args q.qcow2 8M
    cmp v.qcow2 q.qcow2 || fail "qcow2 $args: not qemu-img's bytes"
    [ "$(alloc v.qcow2)" = "$(alloc q.qcow2)" ] ||
        fail "qcow2 $args: allocation $(alloc v.qcow2) vs qemu-img's $(alloc q.qcow2)"
done
echo ok
