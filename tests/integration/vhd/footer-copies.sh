#!/bin/bash
# SPDX-License-Identifier: MIT
# A dynamic VHD (made by qemu-img) whose two footers both have valid
# checksums but disagree: the copy at offset 0 changed in one image, the
# end footer in another, each resealed.  vdk reads it (end footer, with a
# warning), check reports a corruption (exit 2; qemu-img's vpc driver has
# no check: exit 63), a write open is refused and leaves the file alone,
# and check -r all rewrites the copy so writes work again.
# docs/vdk-img.1 "DAMAGED HEADERS" records the choice.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"

qemu-img create -q -f vpc ok.vhd 8M
retry_setup qemu-io -f vpc -c "write -P 0x41 0 4096" -c "write -P 0x42 3M 64k" ok.vhd >/dev/null
qemu-img convert -f vpc -O raw ok.vhd ok.raw
qemu-img create -q -f raw src.raw 8M

rc_of() { local rc=0; "$@" >"$T/out" 2>&1 || rc=$?; echo "$rc"; }

disagree() { # NAME WHICH(copy|end): ok.vhd with one footer's time stamp changed
    cp ok.vhd "$1"
    local at=0
    [ "$2" = copy ] || at=$(( $(stat -c %s "$1") - 512 ))
    patch "$1" $((at + 24)) 12345678    # time stamp
    fixsum "$1" "$at" 512 64
    cmp -s <(head -c 512 "$1") <(tail -c 512 "$1") && fail "premise: the footers agree"
    return 0
}

for which in copy end; do
    img=$which.vhd
    disagree "$img" "$which"
    # premises: qemu-img opens it and has no check for vpc
    qemu-img info -f vpc "$img" >/dev/null || fail "qemu-img refuses $img"
    [ "$(rc_of qemu-img check -f vpc "$img")" = 63 ] || fail "qemu-img check of vpc: not 63"

    # read-only opens work, with a warning, and read the right data
    "$VDK_IMG" convert -f vpc -O raw "$img" "$which.raw" 2>"$T/w" || fail "$which: read-only open"
    grep -q "footer copy at offset 0 of .* differs from the footer at its end" "$T/w" ||
        fail "$which: no warning on a read-only open"
    same_file ok.raw "$which.raw"

    # check reports the corruption
    [ "$(rc_of "$VDK_IMG" check -f vpc "$img")" = 2 ] || { cat "$T/out"; fail "$which: check not 2"; }
    grep -q "ERROR the footer copy at offset 0 differs from the footer" "$T/out" ||
        fail "$which: check does not name the footers"
    [ "$(rc_of "$VDK_IMG" check -r leaks -f vpc "$img")" = 2 ] || fail "$which: -r leaks fixed it"

    # a write open is refused and changes nothing
    sum=$(md5sum <"$img")
    expect_fail "footer copy at offset 0 of .* differs from the footer at its end \(read-only opens only" \
        "$VDK_IMG" convert -n -f raw -O vpc src.raw "$img"
    [ "$(md5sum <"$img")" = "$sum" ] || fail "$which: the refused write open changed the image"

    # check -r all rewrites the copy from the end footer; writes work again
    [ "$(rc_of "$VDK_IMG" check -r all -f vpc "$img")" = 0 ] || { cat "$T/out"; fail "$which: repair"; }
    cmp -s <(head -c 512 "$img") <(tail -c 512 "$img") || fail "$which: footers still differ"
    [ "$(rc_of "$VDK_IMG" check -f vpc "$img")" = 0 ] || fail "$which: check after repair"
    "$VDK_IMG" convert -f vpc -O raw "$img" "$which.raw" 2>"$T/w"
    [ ! -s "$T/w" ] || { cat "$T/w"; fail "$which: warning after repair"; }
    same_file ok.raw "$which.raw"
    "$VDK_IMG" convert -n -f raw -O vpc src.raw "$img" || fail "$which: write after repair"
    qemu-img compare -f raw -F vpc src.raw "$img" >/dev/null || fail "$which: qemu-img compare"
    echo "ok footer $which differs"
done
