#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-luks1: LUKS1 headers made now by cryptsetup and qemu-img,
# passphrase "x", cheap key derivation; the payload is cut off.
set -eu
. "$(dirname "$0")/seed-lib.sh"
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
# qemu-img's LUKS create is a set-up step that can flake under load
# (seed-lib.sh): retried.
qemu_luks() { # OUT OPTIONS
    seed_retry qemu-img create -q -f luks --object secret,id=s,file="$tmp/pass" \
        -o "key-secret=s,iter-time=1,$2" "$1" 0
}
cs --key-size 256
cs --key-size 256 --cipher aes-cbc-essiv:sha256 --hash sha1
cs --key-size 128 --cipher aes-cbc-plain
qemu_luks "$out/qemu-xts128" cipher-alg=aes-128
qemu_luks "$out/qemu-essiv" cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1
# What the structure-aware mutator (fuzz-luks1.c) makes, from the first
# cryptsetup header: an inactive slot with invalid stripes or key material
# overlapping slot 0's, an active slot with 0 or 3999 stripes, key
# material past the payload, digest and slot iterations near 1.07e9 (the
# unbounded derivation), unknown and unterminated names, a key size of 0.
/usr/bin/python3 - "$out/cryptsetup-1" "$out" <<'PYEOF'
import struct, sys
src, out = sys.argv[1], sys.argv[2]
h = bytearray(open(src, 'rb').read())
def seed(name, *edits):
    b = bytearray(h)
    for fmt, off, v in edits:
        if isinstance(v, bytes):
            b[off:off + len(v)] = v
        else:
            struct.pack_into('>' + fmt, b, off, v)
    open(f'{out}/luks1-dmg-{name}', 'wb').write(b)
slot = lambda i: 208 + 48 * i
km0 = struct.unpack_from('>I', h, slot(0) + 40)[0]
pay = struct.unpack_from('>I', h, 104)[0]
seed('inactive-stripes-0', ('I', slot(1) + 44, 0))
seed('inactive-overlap', ('I', slot(1) + 40, km0))
seed('active-stripes-0', ('I', slot(0) + 44, 0))
seed('active-stripes-3999', ('I', slot(0) + 44, 3999))
seed('km-past-payload', ('I', slot(0) + 40, pay + 8))
seed('km-in-header', ('I', slot(0) + 40, 0))
seed('digest-iter-huge', ('I', 164, 1070000000))
seed('slot-iter-huge', ('I', slot(0) + 4, 1070000000))
seed('slot-active-odd', ('I', slot(2), 0x00ac71f2))
seed('cipher-unknown', ('s', 8, b'blowfish'.ljust(32, b'\0')))
seed('mode-unterminated', ('s', 40, b'x' * 32))
seed('hash-unknown', ('s', 72, b'sha3-999'.ljust(32, b'\0')))
seed('key-bytes-0', ('I', 108, 0))
seed('key-bytes-65', ('I', 108, 65))
seed('payload-0', ('I', 104, 0))
PYEOF
