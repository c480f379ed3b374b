#!/bin/bash
# SPDX-License-Identifier: MIT
# LUKS through vdk-img, side by side with qemu-img's command lines: create
# (same "Formatting" line), info --output=json (same format-specific data),
# convert both ways, compare, amend; a wrong passphrase fails cleanly.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

S=$(secret_file s 'img pass') N=$(secret_file n 'new pass')
O=(--object "secret,id=s,file=$S" --object "secret,id=n,file=$N")
IO="driver=luks,key-secret=s,file.filename"
head -c 3M /dev/urandom >"$T/src.raw"
truncate -s 4M "$T/src.raw"

# create: the same line as qemu-img
opts=key-secret=s,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1,iter-time=10
"$VDK_IMG" create -f luks "${O[@]}" -o "$opts" "$T/x.luks" 4M >"$T/v.out"
retry_setup qemu-img create -f luks "${O[@]}" -o "$opts" "$T/x.luks" 4M >"$T/q.out"
same_file "$T/v.out" "$T/q.out"

# convert raw -> LUKS1 with vdk-img; qemu-img reads it byte for byte
"$VDK_IMG" convert "${O[@]}" -O luks -o key-secret=s,iter-time=10 "$T/src.raw" "$T/v.luks"
qemu-img compare "${O[@]}" --image-opts "$IO=$T/v.luks" "driver=raw,file.filename=$T/src.raw" >/dev/null ||
    fail "qemu-img compare: vdk's LUKS differs from the source"
# qemu-img convert raw -> LUKS; vdk-img reads it back
retry_setup qemu-img convert "${O[@]}" -O luks -o key-secret=s,iter-time=10 "$T/src.raw" "$T/q.luks"
"$VDK_IMG" convert "${O[@]}" --image-opts "$IO=$T/q.luks" -O raw "$T/back.raw"
same_file "$T/back.raw" "$T/src.raw"
"$VDK_IMG" compare "${O[@]}" --image-opts "$IO=$T/q.luks" "driver=raw,file.filename=$T/src.raw" >/dev/null ||
    fail "vdk-img compare: qemu's LUKS differs from the source"
echo "ok convert"

# info: the format-specific data equals qemu-img's, for both images
for img in v.luks q.luks; do
    "$VDK_IMG" info --output=json "${O[@]}" --image-opts "$IO=$T/$img" >"$T/vi.json"
    qemu-img info --output=json "${O[@]}" --image-opts "$IO=$T/$img" >"$T/qi.json"
    /usr/bin/python3 - "$T/qi.json" "$T/vi.json" <<'PY' || fail "info of $img differs"
import json, sys
q, v = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("format-specific", "encrypted", "virtual-size", "format"):
    assert q.get(k) == v.get(k), (k, q.get(k), v.get(k))
PY
done
echo "ok info"

# LUKS2 through convert; cryptsetup opens it
"$VDK_IMG" convert "${O[@]}" -O luks \
    -o key-secret=s,format-version=2,pbkdf=argon2id,pbkdf-memory=1024,iter-time=10,sector-size=4096 \
    "$T/src.raw" "$T/v2.luks"
cryptsetup open --test-passphrase "$T/v2.luks" --key-file "$S" || fail "cryptsetup rejects vdk-img's LUKS2"
"$VDK_IMG" compare "${O[@]}" --image-opts "$IO=$T/v2.luks" "driver=raw,file.filename=$T/src.raw" >/dev/null ||
    fail "vdk-img compare on LUKS2"
echo "ok luks2"

# amend in qemu-img's syntax
"$VDK_IMG" amend "${O[@]}" --image-opts "$IO=$T/v.luks" -o state=active,new-secret=n,iter-time=10
cryptsetup open --test-passphrase "$T/v.luks" --key-file "$N" || fail "amend: new passphrase"
"$VDK_IMG" amend "${O[@]}" --image-opts "driver=luks,key-secret=n,file.filename=$T/v.luks" \
    -o state=inactive,old-secret=s
if cryptsetup open --test-passphrase "$T/v.luks" --key-file "$S" 2>/dev/null; then
    fail "amend: the old passphrase still opens the image"
fi
sum=$(md5sum <"$T/v.luks")
expect_fail 'invalid passphrase' "$VDK_IMG" convert "${O[@]}" --image-opts "$IO=$T/v.luks" -O raw "$T/no.raw"
expect_fail 'last active keyslot' "$VDK_IMG" amend "${O[@]}" \
    --image-opts "driver=luks,key-secret=n,file.filename=$T/v.luks" -o state=inactive,keyslot=1
[ "$(md5sum <"$T/v.luks")" = "$sum" ] || fail "a failed command changed the image"
echo "ok amend"

# measure and resize as qemu-img
for o in key-secret=s key-secret=s,cipher-alg=aes-128 key-secret=s,cipher-mode=cbc,ivgen-alg=essiv; do
    "$VDK_IMG" measure "${O[@]}" -O luks --size 10M -o "$o" >"$T/vm"
    # qemu-img measure sizes the header by running the PBKDF benchmark too
    retry_setup --if "$LOAD_FLAKES" qemu-img measure "${O[@]}" -O luks --size 10M -o "$o" >"$T/qm"
    same_file "$T/vm" "$T/qm"
done
"$VDK_IMG" resize "${O[@]}" --image-opts "driver=luks,key-secret=n,file.filename=$T/v.luks" +1M >/dev/null
qemu-img info --output=json "${O[@]}" --image-opts "driver=luks,key-secret=n,file.filename=$T/v.luks" |
    grep -q '"virtual-size": 5242880' || fail "resize: qemu-img sees another size"
qemu-img convert "${O[@]}" --image-opts "driver=luks,key-secret=n,file.filename=$T/v.luks" -O raw "$T/r.raw"
cmp -s -n 4194304 "$T/r.raw" "$T/src.raw" || fail "resize changed the data"
echo "ok measure resize"
