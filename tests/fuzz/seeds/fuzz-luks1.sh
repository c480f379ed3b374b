#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-luks1: LUKS1 headers made now by cryptsetup and qemu-img,
# passphrase "x", cheap key derivation; the payload is cut off.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf x >"$tmp/pass"
n=0
cs() { # cryptsetup luksFormat args...
    n=$((n + 1))
    truncate -s 2M "$tmp/img"
    cryptsetup luksFormat -q --type luks1 --key-file "$tmp/pass" --pbkdf-force-iterations 1000 \
        --align-payload 8 "$@" "$tmp/img" 2>/dev/null
    # keep the header and key material, drop the payload
    local po
    po=$(cryptsetup luksDump "$tmp/img" | sed -n 's/^Payload offset:[ \t]*//p')
    head -c $((po * 512)) "$tmp/img" >"$out/cryptsetup-$n"
    rm -f "$tmp/img"
}
# qemu-img's LUKS create benchmarks PBKDF2 first and, on a busy host, can
# fail with "Unable to get accurate CPU usage": a set-up step, so retried.
qemu_luks() { # OUT OPTIONS
    local i
    for i in 1 2 3 4 5 6 7 8; do
        if qemu-img create -q -f luks --object secret,id=s,file="$tmp/pass" \
               -o "key-secret=s,iter-time=1,$2" "$1" 0 2>"$tmp/err"; then
            return 0
        fi
        sleep "$i"
    done
    cat "$tmp/err" >&2
    return 1
}
cs --key-size 256
cs --key-size 256 --cipher aes-cbc-essiv:sha256 --hash sha1
cs --key-size 128 --cipher aes-cbc-plain
qemu_luks "$out/qemu-xts128" cipher-alg=aes-128
qemu_luks "$out/qemu-essiv" cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1
