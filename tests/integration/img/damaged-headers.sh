#!/bin/bash
# SPDX-License-Identifier: MIT
# Header damage that qemu-img or cryptsetup reject and vdk used to accept
# silently (docs/vdk-img.1 "DAMAGED HEADERS" records each choice):
#  - qcow2 snapshot table offset unaligned while nb_snapshots is 0, and a
#    snapshot entry with too much extra data: read-only opens work, check
#    fails as qemu-img check does (exit 1), write opens are refused;
#  - LUKS1 inactive keyslots with invalid stripes or overlapping areas:
#    refused on every open, as cryptsetup and qemu-img do.
. "$VDK_SRC/tests/integration/lib.sh"

put() { # FILE OFFSET STRUCT-FORMAT VALUE (big endian)
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2],0))
f.write(struct.pack(">"+sys.argv[3], int(sys.argv[4],0)))' "$@"
}
get() { # FILE OFFSET STRUCT-FORMAT
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2],0)); fmt=">"+sys.argv[3]
print(struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0])' "$@"
}
# check_rc WANT REGEX TOOL IMG: `TOOL check IMG` exits WANT, output has REGEX.
check_rc() {
    local want=$1 re=$2 rc=0; shift 2
    "$@" >"$T/chk" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$T/chk" >&2; fail "$*: exit $rc, want $want"; }
    grep -qE -- "$re" "$T/chk" || { cat "$T/chk" >&2; fail "$*: lacks /$re/"; }
}
unchanged() { # IMG CMD...: CMD fails (REGEX in $RE) and IMG is unchanged
    local img=$1 sum; shift
    sum=$(md5sum <"$img")
    expect_fail "$RE" "$@"
    [ "$(md5sum <"$img")" = "$sum" ] || fail "refused '$*' changed $img"
}

# ---- qcow2: unaligned snapshot table offset, no snapshots ----
qemu-img create -q -f qcow2 "$T/a.qcow2" 1M
qemu-io -c "write -P 0x5a 0 64k" "$T/a.qcow2" >/dev/null
put "$T/a.qcow2" 64 Q 0x10001
expect_fail 'Snapshot table offset invalid' qemu-img info "$T/a.qcow2"   # premise
check_rc 1 'ERROR snapshot table offset invalid' qemu-img check "$T/a.qcow2"
check_rc 1 'ERROR snapshot table offset invalid' "$VDK_IMG" check "$T/a.qcow2"
"$VDK_IMG" convert -O raw "$T/a.qcow2" "$T/a.raw" || fail "read-only open refused"
RE='snapshot table offset 0x10001 invalid' unchanged "$T/a.qcow2" "$VDK_IMG" resize "$T/a.qcow2" 2M
RE='snapshot table offset 0x10001 invalid' unchanged "$T/a.qcow2" "$VDK_IMG" snapshot -c s "$T/a.qcow2"
echo "ok qcow2 snapshot offset"

# ---- qcow2: snapshot entry with too much extra data ----
qemu-img create -q -f qcow2 "$T/e.qcow2" 1M
qemu-img snapshot -c s1 "$T/e.qcow2"
SO=$(get "$T/e.qcow2" 64 Q)
put "$T/e.qcow2" $((SO + 36)) I 2000
expect_fail 'Too much extra metadata in snapshot table entry 0' qemu-img info "$T/e.qcow2"
check_rc 1 'Too much extra metadata in snapshot table entry 0' qemu-img check "$T/e.qcow2"
check_rc 1 'Too much extra metadata in snapshot table entry 0' "$VDK_IMG" check "$T/e.qcow2"
"$VDK_IMG" info "$T/e.qcow2" >/dev/null || fail "read-only open refused"
RE='snapshot 0: extra data of 2000 bytes is too large' unchanged "$T/e.qcow2" \
    "$VDK_IMG" resize "$T/e.qcow2" 2M
echo "ok qcow2 snapshot extra data"

# ---- LUKS1 inactive keyslots (cryptsetup-made image) ----
printf 'pass phrase' >"$T/pw"
O=(--object "secret,id=s,file=$T/pw")
truncate -s 8M "$T/l1.img"
cryptsetup luksFormat -q --type luks1 --key-file "$T/pw" --pbkdf-force-iterations 1000 "$T/l1.img"
luks_bad() { # REGEX: cryptsetup rejects $T/bad, and so does every vdk open
    if cryptsetup luksDump "$T/bad" >/dev/null 2>&1; then
        fail "cryptsetup accepts the damaged header (the premise)"
    fi
    RE=$1 unchanged "$T/bad" "$VDK_IMG" info "$T/bad"
    RE=$1 unchanged "$T/bad" "$VDK_IMG" convert "${O[@]}" \
        --image-opts "driver=luks,key-secret=s,file.filename=$T/bad" -O raw "$T/o.raw"
    RE=$1 unchanged "$T/bad" "$VDK_IMG" amend "${O[@]}" \
        --image-opts "driver=luks,key-secret=s,file.filename=$T/bad" \
        -o state=active,new-secret=s,iter-time=10
}
cp "$T/l1.img" "$T/bad"; put "$T/bad" $((208 + 48 * 3 + 44)) I 7      # slot 3 stripes
luks_bad 'LUKS header: keyslot 3 is invalid \(stripes 7, not 4000\)'
cp "$T/l1.img" "$T/bad"; put "$T/bad" $((208 + 48 * 5 + 40)) I "$(get "$T/l1.img" $((208 + 48 * 4 + 40)) I)"
luks_bad 'LUKS header: keyslot [45] is invalid \(its key material overlaps keyslot [45]'"'"'s\)'
cp "$T/l1.img" "$T/bad"; put "$T/bad" $((208 + 48 * 7 + 40)) I 1       # into the header
luks_bad 'LUKS header: keyslot 7 is invalid'
cp "$T/l1.img" "$T/bad"; put "$T/bad" $((208 + 48 * 7 + 40)) I 4090    # into the payload
luks_bad 'LUKS header: keyslot 7 is invalid'
"$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$T/l1.img" \
    -O raw "$T/o.raw" || fail "an intact cryptsetup LUKS1 image is refused"
echo "ok luks1 inactive keyslots"
