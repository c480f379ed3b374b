#!/bin/bash
# SPDX-License-Identifier: MIT
# Encrypted qcow2 refusals: a wrong or missing passphrase, damaged
# encryption header extensions (beyond the end of the file, overlapping
# metadata, misaligned, missing) and bad create options give one clean
# error line and a non-zero exit, never a crash, and leave the image
# byte-identical.  The passphrase never appears in any output.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

P='Sekrit-qcow2-phrase'
S=$(secret_file s "$P")
W=$(secret_file w 'not the passphrase')
OBJ="secret,id=s,file=$S"
ENC="encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10"
io() { echo "driver=qcow2,encrypt.key-secret=s,file.filename=$1"; }
V() { local c=$1; shift; "$VDK_IMG" "$c" --object "$OBJ" "$@"; }

head -c 1M /dev/urandom >"$T/src"
V convert -O qcow2 -o "$ENC" "$T/src" "$T/img.qcow2" >"$T/log" 2>&1
img=$T/img.qcow2

# ---- wrong and missing passphrases ----
sum=$(md5sum <"$img")
expect_fail 'invalid passphrase' \
    "$VDK_IMG" convert --object "secret,id=s,file=$W" --image-opts "$(io "$img")" -O raw "$T/out"
expect_fail 'invalid passphrase' \
    "$VDK_IMG" amend --object "secret,id=s,file=$W" --image-opts "$(io "$img")" \
    -o encrypt.state=inactive,encrypt.keyslot=0
expect_fail 'invalid passphrase' \
    LT --object "secret,id=s,file=$W" pwrite "$(io "$img")" 0 "$T/src"
expect_fail "encrypt.key-secret' is required" \
    env -u VDK_SECRET "$VDK_IMG" convert -f qcow2 "$img" -O raw "$T/out" </dev/null
expect_fail "no secret with id 'nosuch'" \
    V convert --image-opts "driver=qcow2,encrypt.key-secret=nosuch,file.filename=$img" \
    -O raw "$T/out"
[ "$sum" = "$(md5sum <"$img")" ] || fail "a refused open changed the image"
# The environment fallback of the secret rules works for qcow2 too.
VDK_SECRET_S=$P "$VDK_IMG" convert --image-opts "$(io "$img")" -O raw "$T/out"
same_file "$T/out" "$T/src"
echo "ok passphrases"

# ---- damaged encryption header extension ----
# vdk's 1 MiB image: L1 table at 0x30000, LUKS header at 0x40000
# (0x1f9000 bytes), the extension body at 0x78.
[ "$(od -An -tx1 -j 0x70 -N 24 "$img" | tr -d ' \n')" = \
  0537be7700000010000000000004000000000000001f9000 ] ||
    fail "unexpected layout of the encryption header extension"
poke() { # OFFSET HEX: patch a copy of the image into $T/bad
    cp "$img" "$T/bad"
    printf "$(echo "$2" | sed 's/\(..\)/\\x\1/g')" |
        dd of="$T/bad" bs=1 seek=$(($1)) conv=notrunc status=none
}
bad() { # REGEX
    local sum
    sum=$(md5sum <"$T/bad")
    expect_fail "$1" "$VDK_IMG" info "$T/bad"
    expect_fail "$1" V convert --image-opts "$(io "$T/bad")" -O raw "$T/out"
    expect_fail "$1" V check --image-opts "$(io "$T/bad")"
    expect_fail "$1" V amend --image-opts "$(io "$T/bad")" -o encrypt.state=inactive,encrypt.keyslot=0
    [ "$sum" = "$(md5sum <"$T/bad")" ] || fail "a refused open changed the image ($1)"
}
poke 0x78 00000000ff000000; bad 'beyond end of file'
poke 0x80 00000000ff000000; bad 'encryption header length .* out of range'
poke 0x80 0000000001000000; bad 'beyond end of file'
poke 0x80 0000000000000010; bad 'encryption header length 16 out of range'
poke 0x78 0000000000030000; bad 'overlaps the L1 table'
poke 0x78 00000000000000000000000000001000; bad 'cluster-aligned'
poke 0x78 0000000000041000; bad 'cluster-aligned'
poke 0x78 00000000000200000000000000001000; bad 'overlaps a refcount block'
poke 0x74 00000008; bad 'expected 16'
poke 0x70 00000000; bad 'encryption header extension missing'
poke 0x20 00000000; bad 'not LUKS encrypted'
poke 0x20 00000001; bad 'not LUKS encrypted'
poke 0x40000 00000000; bad 'LUKS'
# The L2 table the convert wrote sits after the LUKS header.
l2=$(od -An -tx1 -j $((0x30000)) -N 8 "$img" | tr -d ' \n')
l2=$((0x${l2:2} & ~0xffff))
poke 0x78 "$(printf %016x%016x $((l2 - 0x10000)) 0x20000)"; bad 'overlaps an L2 table'
echo "ok damaged headers"

# ---- options ----
expect_fail 'AES encryption is insecure' V create -f qcow2 -o encryption=on "$T/n1" 1M
expect_fail 'AES encryption is insecure' \
    V create -f qcow2 -o encrypt.format=aes,encrypt.key-secret=s "$T/n2" 1M
expect_fail "encrypt.format' is missing" V create -f qcow2 -o encrypt.key-secret=s "$T/n3" 1M
expect_fail "nvalid (option|parameter) 'encrypt.format-version'" \
    V create -f qcow2 -o "$ENC,encrypt.format-version=2" "$T/n4" 1M
expect_fail "Invalid parameter 'foo' for encrypt.format" \
    V create -f qcow2 -o encrypt.format=foo "$T/n5" 1M
V create -q -f qcow2 "$T/plain.qcow2" 1M
expect_fail "No encryption in image header" \
    V convert --image-opts "driver=qcow2,encrypt.format=luks,file.filename=$T/plain.qcow2" \
    -O raw "$T/out"
expect_fail "encryption - encryption not present|encryption not present" \
    V amend -f qcow2 -o encrypt.state=inactive,encrypt.keyslot=0 "$T/plain.qcow2"
expect_fail "options specify 'aes'" \
    V convert --image-opts "$(io "$img"),encrypt.format=aes" -O raw "$T/out"
echo "ok options"

# ---- the passphrase is never printed ----
{
    V info --output=json --image-opts "$(io "$img")"
    V info "$img"
    V check --image-opts "$(io "$img")"
    V map --output=json --image-opts "$(io "$img")"
    V create -f qcow2 -o "$ENC" "$T/p.qcow2" 1M
    "$VDK_IMG" create -f qcow2 --object "secret,id=s,data=$P" -o "$ENC" "$T/p2.qcow2" 1M
    "$VDK_IMG" convert --object "secret,id=s,file=$W" --image-opts "$(io "$img")" -O raw "$T/o"
} >"$T/all" 2>&1 || true
cat "$T/log" >>"$T/all"
if grep -qF "$P" "$T/all"; then
    fail "the passphrase appears in vdk-img output"
fi
echo "ok no passphrase in output"
