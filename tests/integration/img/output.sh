#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img's JSON and human printers reproduce qemu-img's output for what
# qemu-img prints about qcow2 images (snapshots, bitmaps, LUKS encryption,
# backing chains): member order, escaping, the snapshot table and
# the generic "Format specific information" block.
. "$VDK_SRC/tests/integration/lib.sh"
REPRINT=${1:?usage: output.sh PATH-TO-img-reprint}
cd "$T"
S=(--object secret,id=s0,data=abc)

qimg create -q -f qcow2 plain.qcow2 1M
qimg create -q -f qcow2 -o compat=0.10,cluster_size=4k v2.qcow2 1M
qimg create -q -f qcow2 snaps.qcow2 1M
qimg snapshot -c first snaps.qcow2
qimg snapshot -c a-rather-long-snapshot-name snaps.qcow2
qimg snapshot -c seventeencharsxxx snaps.qcow2
qimg create -q -f qcow2 bm.qcow2 1M
qimg bitmap --add bm.qcow2 b0
qimg bitmap --add -g 128k --disable bm.qcow2 b1
retry_setup qimg create -q "${S[@]}" -f qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 enc.qcow2 1M
qimg create -q -f qcow2 -b snaps.qcow2 -F qcow2 over.qcow2
qimg create -q -f qcow2 -b "$T/plain.qcow2" -F qcow2 'ov"é.qcow2'

for img in plain.qcow2 v2.qcow2 snaps.qcow2 bm.qcow2 enc.qcow2 over.qcow2 \
           'ov"é.qcow2'; do
    for chain in "" --backing-chain; do
        # shellcheck disable=SC2086
        qimg info -U $chain --output=json "$img" >q.json
        "$REPRINT" json q.json >v.json
        cmp -s q.json v.json || { diff q.json v.json || true; fail "JSON of $img $chain"; }
        # shellcheck disable=SC2086
        qimg info -U $chain "$img" >q.txt
        "$REPRINT" human q.json >v.txt
        cmp -s q.txt v.txt || { diff q.txt v.txt || true; fail "human info of $img $chain"; }
    done
done
for img in plain.qcow2 snaps.qcow2; do
    qimg check --output=json "$img" >q.json
    "$REPRINT" json q.json | cmp -s - q.json || fail "check JSON of $img"
done
qimg measure --output=json -O qcow2 --size 1G >q.json
"$REPRINT" json q.json | cmp -s - q.json || fail "measure JSON"
echo ok
