#!/bin/bash
# SPDX-License-Identifier: MIT
# Virtual sizes that are not a multiple of 512, for every format vdk has:
# vdk-img info and convert must give qemu-img 7.2's size and bytes (raw
# and LUKS round up to 512, qcow2 rounds its header size down, vpc keeps
# what its footer says).
. "$VDK_SRC/tests/integration/lib.sh"

put() { # FILE OFFSET STRUCT-FORMAT VALUE (big endian)
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2],0))
f.write(struct.pack(">"+sys.argv[3], int(sys.argv[4],0)))' "$@"
}
vsize() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }

# same IMG [open args...]: info size and converted bytes equal qemu-img's.
same() {
    local img=$1; shift
    local q v
    q=$(qemu-img info --output=json "$@" "$img" | vsize) || fail "qemu-img info $img"
    v=$("$VDK_IMG" info --output=json "$@" "$img" | vsize) || fail "vdk-img info $img"
    [ "$q" = "$v" ] || fail "$img: virtual size $v, qemu-img says $q"
    rm -f "$T/q.raw" "$T/v.raw"
    qemu-img convert "$@" "$img" -O raw "$T/q.raw" || fail "qemu-img convert $img"
    "$VDK_IMG" convert "$@" "$img" -O raw "$T/v.raw" || fail "vdk-img convert $img"
    [ "$(stat -c %s "$T/q.raw")" = "$(stat -c %s "$T/v.raw")" ] ||
        fail "$img: convert wrote $(stat -c %s "$T/v.raw") bytes, qemu-img $(stat -c %s "$T/q.raw")"
    cmp -s "$T/q.raw" "$T/v.raw" || fail "$img: converted bytes differ from qemu-img's"
}

# raw
for n in 1 511 1000 4097; do
    head -c "$n" /dev/urandom >"$T/r$n.raw"
    same "$T/r$n.raw" -f raw
done
echo "ok raw"

# qcow2: header size patched to odd values (qemu rounds down)
for n in 1 513 1000 1049000; do
    qemu-img create -q -f qcow2 "$T/q$n.qcow2" 1M
    qemu-io -c "write -P 0x33 0 64k" "$T/q$n.qcow2" >/dev/null
    put "$T/q$n.qcow2" 24 Q "$n"
    same "$T/q$n.qcow2" -f qcow2
done
echo "ok qcow2"

# vpc: fixed and dynamic, footer sizes odd (checksums resealed)
for t in fixed dynamic; do
    qemu-img create -q -f vpc -o subformat=$t,force_size=on "$T/v$t.vhd" 1M
    qemu-io -f vpc -c "write -P 0x44 0 64k" "$T/v$t.vhd" >/dev/null
    /usr/bin/python3 - "$T/v$t.vhd" $t <<'PY'
import struct, sys
path, t = sys.argv[1], sys.argv[2]
data = bytearray(open(path, "rb").read())
# A fixed disk's size must stay within its data; a dynamic one's BAT block
# (2 MiB) covers 1 MiB + 1000.
size = 1048576 - 1000 if t == "fixed" else 1048576 + 1000
for o in [len(data) - 512] + ([0] if t == "dynamic" else []):
    ft = data[o:o + 512]
    ft[40:56] = struct.pack(">QQ", size, size)
    ft[64:68] = b"\0\0\0\0"
    ft[64:68] = struct.pack(">I", ~sum(ft) & 0xffffffff)
    data[o:o + 512] = ft
open(path, "wb").write(data)
PY
    same "$T/v$t.vhd" -f vpc
done
echo "ok vpc"

# luks: a LUKS1 payload 100 bytes past a sector (qemu-img and cryptsetup made)
printf 'pass phrase' >"$T/pw"
O=(--object "secret,id=s,file=$T/pw")
retry_setup --if "$LOAD_FLAKES" qemu-img create -q -f luks "${O[@]}" -o key-secret=s,iter-time=10 "$T/q.luks" 1M
qemu-io "${O[@]}" --image-opts -c "write -P 0x55 0 1M" "driver=luks,key-secret=s,file.filename=$T/q.luks" >/dev/null
truncate -s +100 "$T/q.luks"
same "driver=luks,key-secret=s,file.filename=$T/q.luks" "${O[@]}" --image-opts
truncate -s 8M "$T/c.luks"
cryptsetup luksFormat -q --type luks1 --key-file "$T/pw" --pbkdf-force-iterations 1000 "$T/c.luks"
truncate -s +300 "$T/c.luks"
same "driver=luks,key-secret=s,file.filename=$T/c.luks" "${O[@]}" --image-opts
echo "ok luks"
