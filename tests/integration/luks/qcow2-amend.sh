#!/bin/bash
# SPDX-License-Identifier: MIT
# Keyslots of encrypted qcow2 images through `vdk-img amend -o
# encrypt.state=...,encrypt.new-secret=...` (qemu-img amend's options), with
# qemu-img as the judge: a passphrase vdk adds opens the image in QEMU, one
# it removes no longer does, the last keyslot is never removed, and vdk
# opens an image whose keyslots qemu-img amend changed.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

S0=$(secret_file s0 'first passphrase')
S1=$(secret_file s1 'second passphrase')
OBJS=(--object "secret,id=s0,file=$S0" --object "secret,id=s1,file=$S1")
io() { echo "driver=qcow2,encrypt.key-secret=$1,file.filename=$T/img.qcow2"; }
V() { local c=$1; shift; "$VDK_IMG" "$c" "${OBJS[@]}" "$@"; }
qread() { # SECRET-ID: qemu-img reads the image as raw into $T/out
    qemu-img convert "${OBJS[@]}" --image-opts "$(io "$1")" -O raw "$T/out"
}
slot_active() { # N
    qemu-img info --output=json "$T/img.qcow2" |
        jq -e ".\"format-specific\".data.encrypt.slots[$1].active" >/dev/null
}

head -c 1M /dev/urandom >"$T/src"
V convert -O qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 \
    "$T/src" "$T/img.qcow2"

# Add a passphrase: keyslot 1, usable by qemu.
V amend --image-opts "$(io s0)" -o encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10
slot_active 1 || fail "keyslot 1 not active after adding a passphrase"
qread s1
same_file "$T/out" "$T/src"
# Remove the first one by its passphrase (old-secret): qemu refuses it now.
V amend --image-opts "$(io s1)" -o encrypt.state=inactive,encrypt.old-secret=s0
! slot_active 0 || fail "keyslot 0 still active"
if qread s0 2>/dev/null; then
    fail "qemu-img still opens the image with a removed passphrase"
fi
expect_fail 'invalid passphrase' V convert --image-opts "$(io s0)" -O raw "$T/out"
# The last keyslot stays.
sum=$(md5sum <"$T/img.qcow2")
expect_fail 'last' V amend --image-opts "$(io s1)" -o encrypt.state=inactive,encrypt.keyslot=1
[ "$sum" = "$(md5sum <"$T/img.qcow2")" ] || fail "a refused amend changed the image"
# Keyslots need the unlocked image.
expect_fail 'key-secret|passphrase' \
    env -u VDK_SECRET "$VDK_IMG" amend -f qcow2 -o encrypt.state=active,encrypt.new-secret=s0 \
    "$T/img.qcow2" </dev/null
echo "ok vdk amend -> qemu-img"

# qemu-img amend adds s0 back; vdk opens with it; check stays clean.
retry_setup --if "$LOAD_FLAKES" qemu-img amend "${OBJS[@]}" --image-opts "$(io s1)" \
    -o encrypt.state=active,encrypt.new-secret=s0,encrypt.iter-time=10
V convert --image-opts "$(io s0)" -O raw "$T/out"
same_file "$T/out" "$T/src"
qemu-img check "${OBJS[@]}" --image-opts "$(io s0)" >/dev/null || fail "qemu-img check"
V check --image-opts "$(io s0)" >/dev/null || fail "vdk-img check"
echo "ok qemu-img amend -> vdk"
