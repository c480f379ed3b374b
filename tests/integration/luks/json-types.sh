#!/bin/bash
# SPDX-License-Identifier: MIT
# LUKS2 JSON members of the wrong type (issue: "tokens" as a string kept a
# dangling pointer into the freed JSON tree).  A cryptsetup-made LUKS2
# image gets "tokens" (and other members) replaced by a string, a number,
# an array, ... with both header checksums resealed.  cryptsetup refuses
# each; vdk-img info, vdk-img amend and vdk-nbd must refuse each with one
# clean line, never crash, never change the image.  In a build without
# AddressSanitizer the commands run under valgrind, which reports the
# use-after-free the plain build otherwise hides.
. "$VDK_SRC/tests/integration/lib.sh"
VDK_NBD=${VDK_NBD:-$VDK_BUILD/nbd-server/vdk-nbd}
. "$VDK_SRC/tests/integration/nbd/common.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

VG=()
if ! ldd "$VDK_IMG" | grep -q libasan && command -v valgrind >/dev/null; then
    VG=(valgrind -q --error-exitcode=99 --leak-check=no)
fi

S=$(secret_file s 'pass phrase')
N=$(secret_file n 'new phrase')
O=(--object "secret,id=s,file=$S" --object "secret,id=n,file=$N")
img=$T/cs2.img
truncate -s 20M "$img"
cryptsetup luksFormat -q --type luks2 --key-file "$S" --pbkdf pbkdf2 \
    --pbkdf-force-iterations 1000 "$img"
"$VDK_IMG" info "$img" >/dev/null || fail "vdk-img info rejects cryptsetup's LUKS2"

E() { /usr/bin/python3 "$VDK_SRC/tests/integration/luks/luks2-edit.py" "$T/bad" "$@"; }

# nbd_refuses REGEX: vdk-nbd must exit at start with REGEX, not serve.
nbd_refuses() {
    local sock=$T/nbd.sock rc=0
    rm -f "$sock"
    : >"$T/nbd.log"
    "${VG[@]}" "$VDK_NBD" -k "$sock" "${O[@]}" --image-opts \
        "driver=luks,key-secret=s,file.filename=$T/bad" 2>>"$T/nbd.log" &
    NBD_PID=$!
    # It listens before it opens the image: served means a client got
    # the export's size.
    local i=0 served=0
    while kill -0 "$NBD_PID" 2>/dev/null; do
        if [ -S "$sock" ] && nbdinfo --size "nbd+unix:///?socket=$sock" >/dev/null 2>&1; then
            served=1; break
        fi
        i=$((i + 1)); [ "$i" -lt 1200 ] || break
        sleep 0.05
    done
    if [ "$served" = 1 ]; then
        kill -TERM "$NBD_PID"
        wait "$NBD_PID" || rc=$?
        NBD_PID=
        cat "$T/nbd.log" >&2
        fail "vdk-nbd served a header cryptsetup rejects (exit $rc after SIGTERM)"
    fi
    wait "$NBD_PID" || rc=$?
    NBD_PID=
    [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && [ "$rc" -ne 99 ] ||
        { cat "$T/nbd.log" >&2; fail "vdk-nbd exited $rc"; }
    grep -qE -- "$1" "$T/nbd.log" || { cat "$T/nbd.log" >&2; fail "vdk-nbd error lacks /$1/"; }
}

# bad CASE REGEX: the edited $T/bad is refused by everyone.
bad() {
    local sum
    if cryptsetup luksDump "$T/bad" >/dev/null 2>&1; then
        fail "cryptsetup accepts $1 (the test's premise)"
    fi
    sum=$(md5sum <"$T/bad")
    expect_fail "$2" "${VG[@]}" "$VDK_IMG" info "$T/bad"
    expect_fail "$2" "${VG[@]}" "$VDK_IMG" info --output=json "${O[@]}" \
        --image-opts "driver=luks,key-secret=s,file.filename=$T/bad"
    expect_fail "$2" "${VG[@]}" "$VDK_IMG" amend "${O[@]}" \
        --image-opts "driver=luks,key-secret=s,file.filename=$T/bad" \
        -o state=active,new-secret=n,iter-time=10
    nbd_refuses "$2"
    [ "$(md5sum <"$T/bad")" = "$sum" ] || fail "a refused command changed the image ($1)"
}

for v in '"a string"' 5 '[1,2]' True None; do
    cp "$img" "$T/bad"; E "j['tokens']=$v"
    bad "tokens=$v" 'LUKS2 header: invalid metadata \("tokens" is not an object\)'
    VG=() # valgrind is slow: once is enough
done
cp "$img" "$T/bad"; E "del j['tokens']"
bad "no tokens" 'LUKS2 header: invalid metadata \("tokens" is not an object\)'
# A token itself of the wrong shape (cryptsetup checks each).
for t in '"x"' '{"keyslots":["0"]}' '{"type":"t","keyslots":"0"}' \
         '{"type":"t","keyslots":[0]}' '{"type":"t","keyslots":["9"]}'; do
    cp "$img" "$T/bad"; E "j['tokens']={'0':$t}"
    bad "token $t" 'LUKS2 header: invalid metadata \(token 0\)'
done
cp "$img" "$T/bad"; E "j['tokens']={'x':{'type':'t','keyslots':['0']}}"
bad "token id x" 'LUKS2 header: invalid metadata \(token id\)'
# Every other member in a wrong type: the config object, a segment, a
# digest, a keyslot and its kdf; each one refused with one line.
for e in "j['config']='x'" "j['config']=[]" "j['segments']['0']=5" \
         "j['segments']['0']['sector_size']='512'" "j['digests']='x'" \
         "j['digests']['0']['keyslots']={}" "j['keyslots']['0']['kdf']=[]" \
         "j['keyslots']['0']['kdf']['salt']=7" "j['keyslots']['0']['area']['offset']=32768" \
         "j['keyslots']['0']['af']={'type':'luks1','stripes':'4000','hash':'sha256'}" \
         "j['config']['requirements']='x'" "j['config']['requirements']={'mandatory':'x'}"; do
    cp "$img" "$T/bad"; E "$e"
    bad "$e" 'LUKS2 header: (invalid metadata|only one segment)'
done
echo "ok wrong JSON types refused"

# A well-formed token survives amend, still as cryptsetup reads it.
cp "$img" "$T/good"
printf '{"type":"vdk-test","keyslots":["0"],"note":"keep me"}' | cryptsetup token import "$T/good"
"${VG[@]}" "$VDK_IMG" amend "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$T/good" \
    -o state=active,new-secret=n,iter-time=10
cryptsetup luksDump "$T/good" | grep -q vdk-test || fail "amend lost a valid token"
cryptsetup open --test-passphrase "$T/good" --key-file "$N" || fail "amend: new passphrase"
echo "ok valid token kept"
