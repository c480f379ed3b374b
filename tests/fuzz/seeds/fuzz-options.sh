#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-options: option strings as users write them for qemu-img
# -o, --image-opts, vdk-nbd and vdk-boot, plus the malformed ones the
# parser must refuse.
#   fuzz-options.sh OUTDIR
set -eu
mkdir -p "$1"
out=$(cd "$1" && pwd)
n=0
seed() { printf '%s' "$1" >"$out/opt-$(printf '%03d' "$n")"; n=$((n + 1)); }

seed 'size=1M'
seed 'cluster_size=64k,compat=1.1,lazy_refcounts=on,refcount_bits=16'
seed 'preallocation=falloc,size=1.5G'
seed 'backing_file=base.qcow2,backing_fmt=qcow2'
seed 'encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10'
seed 'driver=qcow2,file.driver=file,file.filename=disk.qcow2,file.locking=off'
seed 'driver=raw,file.filename=memory://x,file.size=64k,file.align=512'
seed 'disk.img,format=raw,readonly=on,snapshot=on'
seed 'file=a,,b,,c.img,,,,d'
seed 'b=x,,y,,,,z,c=,d'
seed 'secret,id=sec0,data=letmein,format=raw'
seed 'secret,id=fuzz,data=aGVsbG8gd29ybGQ=,format=base64'
seed 'secret,id=fuzz,data=c2VjcmV0,,MTIz,format=base64'
seed 'secret,id=fuzz,data=*zz*,format=base64'
seed 'secret,id=fuzz,data='
seed 'kind=metadata,count=0x10,flag=yes,name=n,size=0.5k'
seed 'count=010,size=99999999T,flag=maybe,kind=none'
seed 'size=-1,size=1Q,size=,size= 1'
seed 'a=1,a=2,a=3'
seed 'e=k=v==w'
seed 'we,,ird=1'
seed 'file.=x,filex=1,file..a=2,.b=3'
seed 'nocow,extent_size_hint=0'
# Malformed: each must fail with a message.
seed 'a=1,'
seed ',a=1'
seed ','
seed '=1'
seed 'a=1,=2'
seed 'a=1,,,'
seed ''
# Many items and a long value.  (The 1,024-item limit itself is covered
# by tests/unit/test-options.c: lookups are linear, and mutating a list
# that long only makes the replay slow.)
s=k0=0
for i in $(seq 1 200); do s="$s,k$i=$i"; done
seed "$s"
seed "filename=$(head -c 3000 /dev/zero | tr '\0' 'x')"
# What the structure-aware mutator (fuzz-text-mutator.h) makes: the item
# bound (1024) and one over, the length bound (64 KiB) one under, at and
# one over, an escaped comma at the end, a dotted key with nothing after.
for c in 1024 1025; do
    s=k0=0
    for i in $(seq 1 $((c - 1))); do s="$s,k$i=$i"; done
    seed "$s"
done
for l in 65535 65536 65537; do
    seed "name=$(head -c $((l - 5)) /dev/zero | tr '\0' 'n')"
done
seed 'name=a,,'
seed 'file.=1,file.driver='
seed 'size=18446744073709551616,count=9223372036854775808,flag=ON'
