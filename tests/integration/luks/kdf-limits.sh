#!/bin/bash
# SPDX-License-Identifier: MIT
# Key derivation costs from an untrusted header are bounded before any
# derivation starts: a LUKS1 digest of ~1.07e9 PBKDF2 iterations (minutes
# of CPU for qemu-img and cryptsetup) is refused at once with one line
# naming the field and the option that raises the limit; info derives no
# key at all; vdk-nbd deriving a (permitted) costly key ends on SIGINT.
. "$VDK_SRC/tests/integration/lib.sh"
VDK_NBD=${VDK_NBD:-$VDK_BUILD/nbd-server/vdk-nbd}
. "$VDK_SRC/tests/integration/nbd/common.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

S=$(secret_file s 'pass phrase')
O=(--object "secret,id=s,file=$S")
# A bound on each command: before the fix they ran for many minutes.
TO=(timeout 300)
put_be32() { # FILE OFFSET VALUE
    /usr/bin/python3 -c 'import struct,sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(struct.pack(">I", int(sys.argv[3])))' "$@"
}

# ---- LUKS1 (cryptsetup), digest iterations 1.07e9 ----
img=$T/l1.img
truncate -s 8M "$img"
cryptsetup luksFormat -q --type luks1 --key-file "$S" --pbkdf-force-iterations 1000 "$img"
cp "$img" "$T/big.img"
put_be32 "$T/big.img" 164 1070000000          # mkDigestIterations
IO="driver=luks,key-secret=s,file.filename=$T/big.img"
expect_fail 'LUKS1 header: mkDigestIterations 1070000000 is above the limit 100000000 \(raise it with the open option max-pbkdf-iterations\)' \
    "${TO[@]}" "$VDK_IMG" convert "${O[@]}" --image-opts "$IO" -O raw "$T/out.raw"
[ ! -e "$T/out.raw" ] || fail "convert created its target before refusing the source"
expect_fail 'mkDigestIterations 1070000000 is above the limit' \
    "${TO[@]}" "$VDK_IMG" compare "${O[@]}" --image-opts "$IO" "$IO"
# info needs no key: it neither derives nor refuses, and shows the count.
"${TO[@]}" "$VDK_IMG" info "${O[@]}" --image-opts "$IO" --output=json >"$T/info.json" ||
    fail "info on the costly header"
grep -q '"master-key-iters": 1070000000' "$T/info.json" || fail "info lacks the iterations"
# The keyslot's own count is bounded the same way.
cp "$img" "$T/ks.img"
put_be32 "$T/ks.img" 212 1070000000           # keyslot 0 passwordIterations
expect_fail 'keyslot 0 passwordIterations 1070000000 is above the limit' \
    "${TO[@]}" "$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$T/ks.img" -O raw "$T/out.raw"
# A limit set lower refuses an ordinary header, naming the option.
expect_fail 'Iterations 1000 is above the limit 999 \(raise it with the open option max-pbkdf-iterations\)' \
    "$VDK_IMG" convert "${O[@]}" --image-opts \
    "driver=luks,key-secret=s,max-pbkdf-iterations=999,file.filename=$img" -O raw "$T/out.raw"
"$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$img" -O raw "$T/ok.raw" ||
    fail "an ordinary cryptsetup LUKS1 image is refused"
echo "ok luks1 limits"

# ---- qcow2 with LUKS (qemu-img), the option under encrypt. ----
retry_setup --if "$LOAD_FLAKES" qemu-img create -q -f qcow2 "${O[@]}" -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 \
    "$T/e.qcow2" 1M
LOFF=$(/usr/bin/python3 -c 'import sys; print(open(sys.argv[1],"rb").read().find(b"LUKS\xba\xbe"))' "$T/e.qcow2")
put_be32 "$T/e.qcow2" $((LOFF + 164)) 1070000000
expect_fail 'mkDigestIterations 1070000000 is above the limit 100000000 \(raise it with the open option encrypt.max-pbkdf-iterations\)' \
    "${TO[@]}" "$VDK_IMG" convert "${O[@]}" --image-opts "driver=qcow2,encrypt.key-secret=s,file.filename=$T/e.qcow2" -O raw "$T/out.raw"
"${TO[@]}" "$VDK_IMG" info "${O[@]}" --image-opts "driver=qcow2,encrypt.key-secret=s,file.filename=$T/e.qcow2" >/dev/null ||
    fail "qcow2 info on the costly header"
echo "ok qcow2 limits"

# ---- LUKS2 argon2: memory and time x memory ----
truncate -s 20M "$T/l2.img"
cryptsetup luksFormat -q --type luks2 --key-file "$S" --pbkdf argon2id --pbkdf-memory 32 \
    --pbkdf-force-iterations 4 --pbkdf-parallel 1 "$T/l2.img"
E() { /usr/bin/python3 "$VDK_SRC/tests/integration/luks/luks2-edit.py" "$T/bad" "$@"; }
cp "$T/l2.img" "$T/bad"; E 'j["keyslots"]["0"]["kdf"]["memory"]=2048'
expect_fail 'LUKS2 header: keyslot 0 kdf memory \(KiB\) 2048 is above the limit 1024 \(raise it with the open option max-pbkdf-memory\)' \
    "$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,max-pbkdf-memory=1024,file.filename=$T/bad" -O raw "$T/out.raw"
cp "$T/l2.img" "$T/bad"; E 'j["keyslots"]["0"]["kdf"]["memory"]=1048576; j["keyslots"]["0"]["kdf"]["time"]=1000000'
expect_fail 'keyslot 0 kdf time x memory \(GiB passes\) 1000000 is above the limit 256 \(raise it with the open option max-pbkdf-work\)' \
    "${TO[@]}" "$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$T/bad" -O raw "$T/out.raw"
"$VDK_IMG" convert "${O[@]}" --image-opts "driver=luks,key-secret=s,file.filename=$T/l2.img" -O raw "$T/ok.raw" ||
    fail "an ordinary cryptsetup LUKS2 image is refused"
echo "ok luks2 limits"

# ---- SIGINT while a permitted but costly derivation runs ----
sock=$T/nbd.sock
: >"$T/nbd.log"
"$VDK_NBD" -k "$sock" "${O[@]}" --image-opts \
    "driver=luks,key-secret=s,max-pbkdf-iterations=2000000000,file.filename=$T/big.img" 2>>"$T/nbd.log" &
NBD_PID=$!
i=0
while [ ! -S "$sock" ] && kill -0 "$NBD_PID" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 1200 ] || break
    sleep 0.05
done
kill -INT "$NBD_PID" 2>/dev/null || true
rc=0; wait "$NBD_PID" || rc=$?
NBD_PID=
grep -q 'interrupted while opening the exports' "$T/nbd.log" ||
    { cat "$T/nbd.log" >&2; fail "vdk-nbd did not stop on SIGINT during key derivation (exit $rc)"; }
[ "$rc" -eq 1 ] || fail "vdk-nbd exit $rc after SIGINT during open, want 1"
[ ! -e "$sock" ] || fail "vdk-nbd left its socket behind"
# vdk-img keeps the default SIGINT action: it ends at once.  A background
# job of this (non-interactive) shell starts with SIGINT ignored, and a
# program keeps an ignored SIGINT, so env restores the default first; the
# signal is sent until the process ends, because one sent before env has
# run would be lost (this hung a run for 17 minutes).
env --default-signal=INT "$VDK_IMG" convert "${O[@]}" --image-opts \
    "driver=luks,key-secret=s,max-pbkdf-iterations=2000000000,file.filename=$T/big.img" -O raw "$T/int.raw" &
pid=$!
i=0
while kill -INT "$pid" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 600 ] || { kill -KILL "$pid"; fail "vdk-img convert ignored SIGINT for 60 s"; }
    sleep 0.1
done
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 130 ] || fail "vdk-img convert exit $rc after SIGINT, want 130"
echo "ok SIGINT"
