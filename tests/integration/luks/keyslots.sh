#!/bin/bash
# SPDX-License-Identifier: MIT
# Keyslot management through amend (qemu-img amend's options) on LUKS1 and
# LUKS2: add and remove passphrases, cryptsetup agrees on which open the
# image, the last keyslot cannot be removed, a wrong passphrase is refused
# with "invalid passphrase" and leaves the image untouched; qemu-img amend
# and vdk understand each other's keyslots.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

A=$(secret_file a 'first pass') B=$(secret_file b 'second pass') C=$(secret_file c 'third')
O=(--object "secret,id=a,file=$A" --object "secret,id=b,file=$B" --object "secret,id=c,file=$C")
head -c 256K /dev/urandom >"$T/pt"

cs_ok()  { cryptsetup open --test-passphrase "$1" --key-file "$2" || fail "cryptsetup: $2 should open $1"; }
cs_bad() { if cryptsetup open --test-passphrase "$1" --key-file "$2" 2>/dev/null; then fail "cryptsetup: $2 must not open $1"; fi; }

for v in 1 2; do
    img=$T/v$v.luks
    LT "${O[@]}" create luks "$img" 256K "key-secret=a,iter-time=10,format-version=$v,pbkdf-memory=256"
    LT "${O[@]}" write "driver=luks,key-secret=a,file.filename=$img" "$T/pt"
    io=(driver=luks,file.filename="$img")
    # add b (first free slot), then c in slot 5
    LT "${O[@]}" amend "driver=luks,key-secret=a,file.filename=$img" state=active,new-secret=b,iter-time=10
    LT "${O[@]}" amend "driver=luks,key-secret=b,file.filename=$img" state=active,new-secret=c,keyslot=5,iter-time=10
    cs_ok "$img" "$A"; cs_ok "$img" "$B"; cs_ok "$img" "$C"
    cryptsetup luksDump "$img" | grep -Eq '^(Key Slot 5: ENABLED|  5: luks2)' || fail "v$v: keyslot 5 not used"
    expect_fail 'keyslot 5 is already active' LT "${O[@]}" amend \
        "driver=luks,key-secret=a,file.filename=$img" state=active,new-secret=c,keyslot=5
    # remove a by passphrase, c by slot
    LT "${O[@]}" amend "driver=luks,key-secret=b,file.filename=$img" state=inactive,old-secret=a
    LT "${O[@]}" amend "driver=luks,key-secret=b,file.filename=$img" state=inactive,keyslot=5
    cs_bad "$img" "$A"; cs_ok "$img" "$B"; cs_bad "$img" "$C"
    expect_fail 'invalid passphrase' LT "${O[@]}" read "driver=luks,key-secret=a,file.filename=$img" "$T/out"
    LT "${O[@]}" read "driver=luks,key-secret=b,file.filename=$img" "$T/out"
    same_file "$T/out" "$T/pt"
    # the last keyslot stays; a wrong passphrase changes nothing
    sum=$(md5sum <"$img")
    expect_fail 'last active keyslot' LT "${O[@]}" amend \
        "driver=luks,key-secret=b,file.filename=$img" state=inactive,old-secret=b
    expect_fail 'invalid passphrase' LT "${O[@]}" amend \
        "driver=luks,key-secret=c,file.filename=$img" state=active,new-secret=a
    expect_fail 'invalid option' LT "${O[@]}" amend \
        "driver=luks,key-secret=b,file.filename=$img" state=active,new-secret=a,bogus=1
    expect_fail 'needs new-secret' LT "${O[@]}" amend \
        "driver=luks,key-secret=b,file.filename=$img" state=active
    [ "$(md5sum <"$img")" = "$sum" ] || fail "v$v: a refused amend changed the image"
    echo "ok keyslots luks$v"
done

# qemu-img amend adds a keyslot to vdk's LUKS1 image; vdk opens with it,
# and removes one qemu-img added.
img=$T/v1.luks
retry_setup --if "$LOAD_FLAKES" qemu-img amend "${O[@]}" --image-opts "driver=luks,key-secret=b,file.filename=$img" \
    -o state=active,new-secret=c,iter-time=10 || fail "qemu-img amend on vdk's image"
LT "${O[@]}" read "driver=luks,key-secret=c,file.filename=$img" "$T/out"
same_file "$T/out" "$T/pt"
LT "${O[@]}" amend "driver=luks,key-secret=b,file.filename=$img" state=inactive,old-secret=c
qemu-img convert "${O[@]}" --image-opts "driver=luks,key-secret=b,file.filename=$img" -O raw "$T/q.raw"
same_file "$T/q.raw" "$T/pt"
if qemu-img convert "${O[@]}" --image-opts "driver=luks,key-secret=c,file.filename=$img" -O raw "$T/q2.raw" 2>/dev/null; then
    fail "qemu still opens with the removed passphrase"
fi
echo "ok qemu-img amend"

# vdk's amend on a cryptsetup LUKS2 image keeps its label, token and the
# other keyslots; cryptsetup still opens it with every passphrase.
img=$T/cs2.img
truncate -s 20M "$img"
retry_setup cryptsetup luksFormat -q --type luks2 --key-file "$A" --pbkdf pbkdf2 \
    --pbkdf-force-iterations 1000 --label vdk-label "$img"
printf '{"type":"vdk-test","keyslots":["0"],"note":"keep me"}' | cryptsetup token import "$img"
LT "${O[@]}" amend "driver=luks,key-secret=a,file.filename=$img" state=active,new-secret=b,iter-time=10
cryptsetup luksDump "$img" >"$T/dump"
grep -q 'vdk-label' "$T/dump" || fail "amend lost the LUKS2 label"
grep -q 'vdk-test' "$T/dump" || fail "amend lost the LUKS2 token"
cs_ok "$img" "$A"; cs_ok "$img" "$B"
LT "${O[@]}" amend "driver=luks,key-secret=b,file.filename=$img" state=inactive,old-secret=a
cs_bad "$img" "$A"; cs_ok "$img" "$B"
echo "ok cryptsetup LUKS2 amend"
