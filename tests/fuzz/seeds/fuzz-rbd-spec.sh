#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-rbd-spec: rbd: names as qemu-img, libvirt and OpenStack
# write them, and malformed ones the parser must refuse.  The target adds
# the "rbd:" prefix itself to inputs whose first byte is odd, so each name
# is written without it and with it.
#   fuzz-rbd-spec.sh OUTDIR
set -eu
mkdir -p "$1"
out=$(cd "$1" && pwd)
n=0
seed() {
    printf '%s' "$1" >"$out/rbd-$(printf '%03d' "$n")"; n=$((n + 1))
    printf 'rbd:%s' "$1" >"$out/rbd-$(printf '%03d' "$n")"; n=$((n + 1))
}

seed 'vdk/disk'
seed 'vdk/ns1/disk'
seed 'vdk/disk@snap1'
seed 'vdk/ns1/disk@snap1:conf=/etc/ceph/ceph.conf:id=admin'
seed 'volumes/volume-1234:id=cinder:keyring=/etc/ceph/ceph.client.cinder.keyring'
seed 'vdk/disk:mon_host=127.0.0.1\:6789\;10.0.0.2\:6789:auth_supported=none'
seed 'vdk/disk:client_mount_timeout=5:rados_osd_op_timeout=10:connect-timeout=3'
seed 'vdk/a\/b\@c\:d'
seed 'vdk/disk@s@t:x=y'
seed 'vdk'
seed '/disk'
seed 'vdk/'
seed 'vdk//disk'
seed 'vdk/a/b/c'
seed 'vdk/disk@'
seed 'vdk/disk:'
seed 'vdk/disk:novalue'
seed 'vdk/disk:=v'
seed 'vdk/disk:conf='
seed 'vdk/disk\'
seed "vdk/disk$(for i in $(seq 1 40); do printf ':k%d=v' "$i"; done)"
seed "vdk/$(head -c 1100 /dev/zero | tr '\0' x)"
# What the structure-aware mutator (fuzz-text-mutator.h) makes: escapes at
# the end, doubled, before each separator; repeated and empty keys; names
# and the whole spec at their bounds (one under, at, one over); the pair
# limit and one over it; bytes outside ASCII.
seed 'vdk/disk:id=admin\'
seed 'vdk/disk:id=a\\\\b'
seed 'v\:d\@k/d\/i\=sk@s\:n:conf=\:\@\/\='
seed 'vdk/disk:id=a:id=b:conf=x:conf=y'
seed 'vdk/disk::id=a'
seed 'vdk/disk:id=a::'
seed 'vdk/disk@:id=a'
seed 'vdk/ns/disk@snap@snap2'
seed 'vdk/ns/disk/extra@s'
seed "vdk/disk:k=$(printf 'caf\303\251\342\200\256')"
for l in 1023 1024 1025; do
    seed "vdk/$(head -c $l /dev/zero | tr '\0' i)"
    seed "$(head -c $l /dev/zero | tr '\0' p)/disk"
    seed "vdk/disk@$(head -c $l /dev/zero | tr '\0' s)"
done
for l in 4091 4092 4093; do
    seed "vdk/disk:k=$(head -c $((l - 11)) /dev/zero | tr '\0' v)"
done
for p in 32 33; do
    seed "vdk/disk$(for i in $(seq 1 "$p"); do printf ':k%d=v' "$i"; done)"
done
