#!/bin/bash
# SPDX-License-Identifier: MIT
# Damaged LUKS headers give one clean error line, exit non-zero, never
# crash and never change the image; a damaged LUKS2 primary header falls
# back to the secondary copy.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

S=$(secret_file s 'pass phrase')
OBJ="secret,id=s,file=$S"
head -c 64K /dev/urandom >"$T/pt"
LT --object "$OBJ" create luks "$T/v1" 64K key-secret=s,iter-time=10
LT --object "$OBJ" write "driver=luks,key-secret=s,file.filename=$T/v1" "$T/pt"
LT --object "$OBJ" create luks "$T/v2" 64K \
    key-secret=s,format-version=2,pbkdf=pbkdf2,iter-time=10
LT --object "$OBJ" write "driver=luks,key-secret=s,file.filename=$T/v2" "$T/pt"

# poke IMG OFFSET HEXBYTES: overwrite bytes in a copy of IMG at $T/bad.
poke() {
    cp "$1" "$T/bad"
    printf "$(echo "$3" | sed 's/\(..\)/\\x\1/g')" |
        dd of="$T/bad" bs=1 seek="$2" conv=notrunc status=none
}

bad_open() { # REGEX: opening $T/bad fails cleanly and leaves it unchanged
    local sum
    sum=$(md5sum <"$T/bad")
    expect_fail "$1" LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$T/bad" "$T/out"
    expect_fail "$1" LT --object "$OBJ" amend "driver=luks,key-secret=s,file.filename=$T/bad" \
        state=inactive,keyslot=0
    [ "$(md5sum <"$T/bad")" = "$sum" ] || fail "a failed open changed the image ($1)"
}

# ---- LUKS1 ----
poke "$T/v1" 0 58;                 bad_open 'bad magic'
poke "$T/v1" 248 00ffffff;         bad_open 'key material of keyslot 0 is beyond the end'
poke "$T/v1" 252 00000000;         bad_open 'keyslot 0 has invalid stripes 0'
poke "$T/v1" 104 7fffffff;         bad_open 'payload offset .* beyond the end'
poke "$T/v1" 108 00000000;         bad_open 'invalid key size'
poke "$T/v1" 108 00001000;         bad_open 'invalid key size'
poke "$T/v1" 40 7a7a7a;            bad_open 'unsupported cipher mode'
poke "$T/v1" 8 646573;             bad_open "unsupported cipher 'des'"
poke "$T/v1" 72 6d6435;            bad_open "unsupported hash 'md5"
poke "$T/v1" 208 12345678;         bad_open 'keyslot 0 has an invalid state'
poke "$T/v1" 164 00000000;         bad_open 'invalid master key iterations'
poke "$T/v1" 6 0003;               bad_open 'unsupported LUKS version 3'
head -c 100 "$T/v1" >"$T/bad";     bad_open 'too short'
poke "$T/v1" 104 00000008;         bad_open 'payload overlaps the key material of keyslot 0'
# An inactive slot whose recorded area lies in the payload: refused on
# open, as cryptsetup ("keyslot 1 is invalid") and qemu-img refuse it, so
# adding a key there never overwrites data.
poke "$T/v1" $((208 + 48 + 40)) 00000fc8
sum=$(md5sum <"$T/bad")
expect_fail 'keyslot 1 is invalid' LT --object "$OBJ" amend \
    "driver=luks,key-secret=s,file.filename=$T/bad" state=active,new-secret=s,keyslot=1,iter-time=10
[ "$(md5sum <"$T/bad")" = "$sum" ] || fail "a refused amend changed the image"
# Damaged key material: the passphrase no longer opens the slot.
poke "$T/v1" 4096 000102030405060708; bad_open 'invalid passphrase'
echo "ok luks1"

# ---- LUKS2 ----
E() { /usr/bin/python3 "$VDK_SRC/tests/integration/luks/luks2-edit.py" "$T/bad" "$@"; }
cp "$T/v2" "$T/bad"; E --raw '{"keyslots":' ;                 bad_open 'malformed JSON'
cp "$T/v2" "$T/bad"; E --raw '[1,2,3]' ;                      bad_open 'malformed JSON'
cp "$T/v2" "$T/bad"; E --break-csum ;                         bad_open 'checksum mismatch'
cp "$T/v2" "$T/bad"; E 'j["digests"]["0"]["keyslots"]=[]' ;   bad_open 'digest matches no keyslot'
cp "$T/v2" "$T/bad"; E 'j["digests"]["0"]["keyslots"]=["0","7"]' ; bad_open 'missing keyslot'
cp "$T/v2" "$T/bad"; E 'j["digests"]["0"]["segments"]=["1"]' ; bad_open 'no digest for segment 0'
cp "$T/v2" "$T/bad"; E 'j["keyslots"]["0"]["area"]["offset"]="999999999999"' ; bad_open 'keyslot area is beyond the end'
cp "$T/v2" "$T/bad"; E 'j["keyslots"]["0"]["af"]["stripes"]=0' ; bad_open 'invalid metadata'
cp "$T/v2" "$T/bad"; E 'j["keyslots"]["0"]["kdf"]["iterations"]=-5' ; bad_open 'invalid metadata'
cp "$T/v2" "$T/bad"; E 'j["keyslots"]["0"]["kdf"]["salt"]="!!"' ; bad_open 'invalid metadata'
cp "$T/v2" "$T/bad"; E 'j["segments"]["0"]["offset"]="99999999999"' ; bad_open 'payload offset .* beyond the end'
cp "$T/v2" "$T/bad"; E 'j["segments"]["0"]["sector_size"]=1000' ; bad_open 'invalid metadata'
cp "$T/v2" "$T/bad"; E 'j["segments"]["1"]=j["segments"]["0"]' ; bad_open 'only one segment'
cp "$T/v2" "$T/bad"; E 'j["config"]["json_size"]="5"' ;        bad_open 'invalid metadata'
cp "$T/v2" "$T/bad"; E 'j["config"]["keyslots_size"]="99999999999"' ; bad_open 'payload overlaps the metadata'
cp "$T/v2" "$T/bad"; E 'j["segments"]["0"]["offset"]="0"' ;   bad_open 'detached headers are not supported'
cp "$T/v2" "$T/bad"; E 'j["config"]["requirements"]={"mandatory":["online-reencrypt"]}' ; bad_open 'mandatory requirements'
cp "$T/v2" "$T/bad"; E 'del j["keyslots"]' ;                   bad_open 'invalid metadata'
poke "$T/v2" 0 0000000000000000   # both magics wiped
dd if=/dev/zero of="$T/bad" bs=1 seek=16384 count=8 conv=notrunc status=none
bad_open 'bad magic'

# A damaged primary header: the secondary copy is used, data reads back.
for dmg in --break-csum "--raw {" ; do
    cp "$T/v2" "$T/bad"
    # shellcheck disable=SC2086
    E $dmg primary
    LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$T/bad" "$T/out" ||
        fail "the secondary LUKS2 header was not used ($dmg)"
    same_file "$T/out" "$T/pt"
done
# Primary magic wiped: still found through the secondary.
poke "$T/v2" 0 0000000000
LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$T/bad" "$T/out" ||
    fail "the secondary LUKS2 header was not found"
same_file "$T/out" "$T/pt"
echo "ok luks2"
