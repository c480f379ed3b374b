#!/bin/bash
# SPDX-License-Identifier: MIT
# info of every format vdk and qemu-img both read, made by qemu-img with a
# spread of options: JSON and human output identical to qemu-img 7.2's,
# probed and with -f, alone and with --backing-chain.  (raw: info.sh;
# qcow2 cluster and refcount variants: qcow2/img-tool.sh.)
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

both_info() { # IMG [FMT]
    local img=$1 f=()
    [ -z "${2:-}" ] || f=(-f "$2")
    for out in json human; do
        same_output "info $out ${f[*]} $img" info "${f[@]}" --output=$out "$img"
        same_output "info --backing-chain $out $img" info "${f[@]}" --backing-chain \
            --output=$out "$img"
    done
}
qio() { qemu-io "$@" >/dev/null; }

# VHD: dynamic, fixed, sizes qemu rounds to a geometry and force_size.
for o in subformat=dynamic subformat=fixed subformat=dynamic,force_size=on \
         subformat=fixed,force_size=on; do
    for size in 4M 100M; do
        img=vpc-${o//[=,]/-}-$size.vhd
        qimg create -q -f vpc -o "$o" "$img" "$size"
        qio -f vpc -c 'write -P 1 0 64k' -c 'write -P 2 3M 4k' "$img"
        both_info "$img" vpc
    done
done
both_info vpc-subformat-dynamic-4M.vhd

# LUKS (qemu-img 7.2 writes LUKS1) with its cipher, hash and ivgen options.
echo -n pw >pw
sec=(--object secret,id=s0,file=pw)
n=0
for o in "" cipher-alg=aes-128 cipher-alg=aes-256,cipher-mode=cbc,ivgen-alg=essiv \
         hash-alg=sha1 ivgen-alg=plain,ivgen-hash-alg=sha256; do
    img=l$n.luks; n=$((n + 1))
    retry_setup --if "$LOAD_FLAKES" qimg create -q -f luks "${sec[@]}" -o key-secret=s0,iter-time=10${o:+,$o} "$img" 4M
    both_info "$img"
    both_info "$img" luks
done

# qcow2: encrypted, backing chains, snapshots, extended L2 with data,
# preallocation, a corrupt bit and a dirty bit.
retry_setup --if "$LOAD_FLAKES" qimg create -q -f qcow2 "${sec[@]}" -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 \
    enc.qcow2 4M
both_info enc.qcow2
qimg create -q -f qcow2 base.qcow2 8M
qio -c 'write -P 3 0 1M' base.qcow2
qimg create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
qimg create -q -f qcow2 -b mid.qcow2 -F qcow2 -o compat=0.10 top.qcow2 16M
qimg create -q -f raw rawbase.raw 2M
qimg create -q -f qcow2 -b rawbase.raw -F raw onraw.qcow2
qimg create -q -f qcow2 -b vpc-subformat-dynamic-4M.vhd -F vpc onvpc.qcow2
for img in base.qcow2 mid.qcow2 top.qcow2 onraw.qcow2 onvpc.qcow2; do both_info "$img"; done
qimg snapshot -c first base.qcow2
qio -c 'write -P 4 64k 64k' base.qcow2
qimg snapshot -c second base.qcow2
both_info base.qcow2
for o in preallocation=metadata extended_l2=on,cluster_size=128k lazy_refcounts=on; do
    img=q-${o//[=,]/-}.qcow2
    qimg create -q -f qcow2 -o "$o" "$img" 4M
    qio -c 'write -P 5 4k 4k' "$img"
    both_info "$img"
done
cp q-lazy_refcounts-on.qcow2 dirty.qcow2
printf '\1' | dd of=dirty.qcow2 bs=1 seek=79 conv=notrunc status=none  # incompatible: dirty
both_info dirty.qcow2
cp base.qcow2 corrupt.qcow2
printf '\2' | dd of=corrupt.qcow2 bs=1 seek=79 conv=notrunc status=none  # incompatible: corrupt
both_info corrupt.qcow2
echo ok
