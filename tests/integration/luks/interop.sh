#!/bin/bash
# SPDX-License-Identifier: MIT
# LUKS interop with the independent judges:
#  1. images vdk creates pass `cryptsetup luksDump` and `open --test-passphrase`
#     (a wrong passphrase is rejected), and their payload, decrypted with the
#     volume key cryptsetup dumps by `openssl enc` (sector-crypt.py), is what
#     vdk wrote; qemu-img reads vdk's LUKS1 images byte-exact;
#  2. vdk reads images cryptsetup made: LUKS2 filled by `cryptsetup reencrypt
#     --encrypt --reduce-device-size` (works on a plain file, no dm device),
#     LUKS1 by luksFormat + a payload encrypted with openssl under the dumped
#     key (LUKS1 reencrypt needs device-mapper);
#  3. vdk reads images qemu-img creates and qemu-io writes.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

P='correct horse battery'
S=$(secret_file s "$P")
OBJ="secret,id=s,file=$S"
head -c 1M /dev/urandom >"$T/pt"

# ---- 1. vdk -> cryptsetup, openssl, qemu-img ----
check_vdk_image() { # NAME CREATE-OPTS MODE
    local img=$T/$1.luks
    LT --object "$OBJ" create luks "$img" 1M "key-secret=s,iter-time=10${2:+,$2}" ||
        fail "$1: create"
    LT --object "$OBJ" write "driver=luks,key-secret=s,file.filename=$img" "$T/pt" ||
        fail "$1: write"
    cryptsetup luksDump "$img" >"$T/dump" || fail "$1: luksDump rejects vdk's header"
    cryptsetup open --test-passphrase "$img" --key-file "$S" ||
        fail "$1: cryptsetup rejects the passphrase"
    if cryptsetup open --test-passphrase "$img" --key-file <(printf wrong) 2>/dev/null; then
        fail "$1: cryptsetup accepts a wrong passphrase"
    fi
    local key off ss
    key=$(volkey "$img" "$P")
    [ -n "$key" ] || fail "$1: no volume key"
    off=$(LT --object "$OBJ" info "driver=luks,key-secret=s,file.filename=$img" |
          sed -n 's/.*"payload-offset": \([0-9]*\).*/\1/p')
    ss=$(sed -n 's/.*sector: \([0-9]*\) \[bytes\].*/\1/p' "$T/dump")
    ss=${ss:-512}
    # First 16 KiB and 8 KiB at 512 KiB: IV = guest offset / 512.
    for at in 0 524288; do
        local len=$((ss > 8192 ? ss : 8192))
        slice "$img" $((off + at)) $len | SC "$3" "$key" $((at / 512)) "$ss" >"$T/dec"
        slice "$T/pt" "$at" $len | cmp -s - "$T/dec" ||
            fail "$1: openssl decryption of the payload at $at differs"
    done
    if grep -q '^Version:.*1' "$T/dump"; then
        qemu-img convert --object "$OBJ" --image-opts \
            "driver=luks,key-secret=s,file.filename=$img" -O raw "$T/q.raw" ||
            fail "$1: qemu-img cannot read vdk's LUKS1 image"
        same_file "$T/q.raw" "$T/pt"
    fi
    echo "ok vdk $1"
}
check_vdk_image v1-xts "" xts-plain64
check_vdk_image v1-essiv "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1" cbc-essiv:sha256
check_vdk_image v1-cbc-plain "cipher-mode=cbc,ivgen-alg=plain,hash-alg=sha512" cbc-plain
check_vdk_image v1-cbc-plain64 "cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=plain64" cbc-plain64
check_vdk_image v2-argon2id-4k "format-version=2,pbkdf=argon2id,pbkdf-memory=1024,pbkdf-force-iterations=4,sector-size=4096" xts-plain64
check_vdk_image v2-argon2i "format-version=2,pbkdf=argon2i,pbkdf-memory=512,cipher-alg=aes-128" xts-plain64
check_vdk_image v2-pbkdf2 "format-version=2,pbkdf=pbkdf2,hash-alg=sha512,cipher-mode=cbc,ivgen-alg=essiv" cbc-essiv:sha256

# ---- 2. cryptsetup -> vdk ----
cs_reencrypt() { # NAME cryptsetup-args...
    local name=$1; shift
    local img=$T/$name.img
    head -c 1M /dev/urandom >"$T/$name.data"
    truncate -s 20M "$img"
    dd if="$T/$name.data" of="$img" conv=notrunc status=none
    cryptsetup reencrypt -q --encrypt --type luks2 --reduce-device-size 16M \
        --key-file "$S" "$@" "$img" || fail "$name: cryptsetup reencrypt"
    LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$img" "$T/out" ||
        fail "$name: vdk cannot read cryptsetup's LUKS2 image"
    cmp -s -n 1048576 "$T/out" "$T/$name.data" || fail "$name: payload differs"
    expect_fail "invalid passphrase" env VDK_SECRET_W=nope "$LUKS_TOOL" read \
        "driver=luks,key-secret=w,file.filename=$img" "$T/out"
    echo "ok cryptsetup $name"
}
cs_reencrypt cs2-argon2id --pbkdf argon2id --pbkdf-memory 1024 --pbkdf-force-iterations 4
cs_reencrypt cs2-pbkdf2-essiv --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha1 \
    --cipher aes-cbc-essiv:sha256 --key-size 256
cs_reencrypt cs2-4k --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --sector-size 4096

cs_luks1() { # NAME MODE cryptsetup-args...
    local name=$1 mode=$2; shift 2
    local img=$T/$name.img
    truncate -s 4M "$img"
    retry_setup cryptsetup luksFormat -q --type luks1 --key-file "$S" --pbkdf-force-iterations 1000 \
        "$@" "$img" || fail "$name: luksFormat"
    local off key
    off=$(($(cryptsetup luksDump "$img" | sed -n 's/^Payload offset:[ \t]*//p') * 512))
    key=$(volkey "$img" "$P")
    slice "$T/pt" 0 65536 | SC "$mode" "$key" 0 512 -e |
        dd of="$img" bs=512 seek=$((off / 512)) conv=notrunc status=none
    LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$img" "$T/out" ||
        fail "$name: vdk cannot read cryptsetup's LUKS1 image"
    cmp -s -n 65536 "$T/out" "$T/pt" || fail "$name: payload differs"
    echo "ok cryptsetup $name"
}
cs_luks1 cs1-xts xts-plain64
cs_luks1 cs1-essiv-sha1 cbc-essiv:sha256 --cipher aes-cbc-essiv:sha256 --key-size 256 --hash sha1

# ---- 3. qemu-img -> vdk ----
qemu_made() { # NAME create-opts
    local img=$T/$1.qluks
    retry_setup qemu-img create -q -f luks --object "$OBJ" -o "key-secret=s,iter-time=10${2:+,$2}" "$img" 2M ||
        fail "$1: qemu-img create"
    retry_setup qemu-io --object "$OBJ" --image-opts "driver=luks,key-secret=s,file.filename=$img" \
        -c "write -P 0xa5 0 1M" -c "write -P 0x3c 1536k 4k" >/dev/null || fail "$1: qemu-io"
    LT --object "$OBJ" read "driver=luks,key-secret=s,file.filename=$img" "$T/out" ||
        fail "$1: vdk cannot read qemu's image"
    qemu-img convert --object "$OBJ" --image-opts "driver=luks,key-secret=s,file.filename=$img" \
        -O raw "$T/q.raw"
    cmp -s -n 1048576 "$T/out" "$T/q.raw" || fail "$1: vdk and qemu-img disagree"
    slice "$T/out" 1572864 4096 | cmp -s - <(slice "$T/q.raw" 1572864 4096) ||
        fail "$1: vdk and qemu-img disagree at 1.5M"
    # And qemu reads what vdk writes into qemu's image.
    LT --object "$OBJ" write "driver=luks,key-secret=s,file.filename=$img" <(head -c 2M "$T/pt"; head -c 1M "$T/pt") ||
        fail "$1: vdk write"
    qemu-img convert --object "$OBJ" --image-opts "driver=luks,key-secret=s,file.filename=$img" \
        -O raw "$T/q.raw"
    cmp -s -n 1048576 "$T/q.raw" "$T/pt" || fail "$1: qemu cannot read vdk's writes"
    echo "ok qemu $1"
}
qemu_made q-xts ""
qemu_made q-essiv "cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv,ivgen-hash-alg=sha256,hash-alg=sha1"
qemu_made q-cbc128 "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=plain64"

# info matches qemu-img's format-specific fields for a qemu-made image.
img=$T/q-essiv.qluks
qemu-img info --output=json --object "$OBJ" --image-opts \
    "driver=luks,key-secret=s,file.filename=$img" >"$T/qi.json"
LT --object "$OBJ" info "driver=luks,key-secret=s,file.filename=$img" >"$T/vi.json"
/usr/bin/python3 - "$T/qi.json" "$T/vi.json" <<'PY' || fail "info differs from qemu-img's"
import json, sys
q = json.load(open(sys.argv[1]))["format-specific"]
v = json.load(open(sys.argv[2]))["format-specific"]
assert q == v, (q, v)
PY
echo "ok info"
