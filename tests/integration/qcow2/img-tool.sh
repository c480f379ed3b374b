#!/bin/bash
# SPDX-License-Identifier: MIT
# The qcow2 driver through vdk-img: output identical to qemu-img's for
# info, check and map on qemu-made images; create/convert/amend/resize
# results that qemu-img accepts; measure equal to qemu-img measure.
. "$(dirname "$0")/common.sh"
make_raw "$T/src.raw" 3
same_out() { # what, then both commands' outputs must be equal
    local what=$1
    "$VDK_IMG" "${@:2}" >"$T/.v" 2>&1 || true
    qemu-img "${@:2}" >"$T/.q" 2>&1 || true
    sed -i 's/^vdk-img:/qemu-img:/' "$T/.v"
    cmp -s "$T/.v" "$T/.q" || { diff "$T/.v" "$T/.q" >&2; fail "$what differs from qemu-img"; }
}
n=0
for o in cluster_size=512 compat=0.10 refcount_bits=1 extended_l2=on \
         compression_type=zstd lazy_refcounts=on cluster_size=2M,refcount_bits=64; do
  img=$T/q$n.qcow2; n=$((n + 1))
  qemu-img convert -q -f raw -O qcow2 -o "$o" "$T/src.raw" "$img"
  qio -c "write -z 64k 64k" -c "discard 1M 64k" "$img"
  same_out "info $o" info --output=json "$img"
  same_out "info (human) $o" info "$img"
  same_out "check $o" check "$img"
  same_out "check json $o" check --output=json "$img"
  same_out "map $o" map --output=json "$img"
done
qemu-img convert -q -c -f raw -O qcow2 "$T/src.raw" "$T/cq.qcow2"
same_out "check compressed" check "$T/cq.qcow2"
same_out "info compressed" info --output=json "$T/cq.qcow2"

# Persistent bitmaps and internal snapshots (made by qemu-img).
qemu-img create -q -f qcow2 "$T/bm.qcow2" 4M
qemu-img bitmap --add "$T/bm.qcow2" b0
qemu-img bitmap --add -g 128k "$T/bm.qcow2" b1
qio -c "write 0 64k" -c "write 1M 64k" "$T/bm.qcow2"
same_out "info bitmaps" info --output=json "$T/bm.qcow2"
same_out "check bitmaps" check "$T/bm.qcow2"
qemu-img snapshot -c s1 "$T/bm.qcow2"
qio -c "write -P 0x3 32k 64k" "$T/bm.qcow2"
same_out "check snapshots" check --output=json "$T/bm.qcow2"

# vdk-img create / convert produce images qemu-img accepts and compares equal.
"$VDK_IMG" create -q -f qcow2 -o cluster_size=4k "$T/v.qcow2" 3M ||
    fail "vdk-img create"
qemu_clean "$T/v.qcow2"
for c in "" -c; do
  rm -f "$T/vc.qcow2"
  "$VDK_IMG" convert $c -f raw -O qcow2 "$T/src.raw" "$T/vc.qcow2" || fail "convert $c"
  qemu_clean "$T/vc.qcow2"
  qemu-img compare -q -f raw -F qcow2 "$T/src.raw" "$T/vc.qcow2" || fail "compare $c"
  qemu-img convert -q $c -f raw -O qcow2 "$T/src.raw" "$T/qc.qcow2"
  [ "$(stat -c %s "$T/vc.qcow2")" -le "$(stat -c %s "$T/qc.qcow2")" ] ||
      fail "convert $c output larger than qemu-img's"
done
# qcow2 -> qcow2 with a backing file, then rebase -u and commit-free checks.
"$VDK_IMG" create -q -f qcow2 -b vc.qcow2 -F qcow2 "$T/ov.qcow2" || fail "create overlay"
qio -c "write -P 0x5 0 100k" "$T/ov.qcow2"
same_out "overlay info" info --output=json "$T/ov.qcow2"
same_out "overlay chain info" info --backing-chain --output=json "$T/ov.qcow2"
same_out "overlay map" map --output=json "$T/ov.qcow2"
# measure
for o in "" "-o cluster_size=4k,refcount_bits=1"; do
  same_out "measure $o" measure -O qcow2 $o --size 5G
  same_out "measure src $o" measure -O qcow2 $o -f raw "$T/src.raw"
done
# measure from qcow2 sources: the "bitmaps size" line (v3 to v3 only),
# with persistent bitmaps of two granularities made by qemu-img.
qemu-img create -q -f qcow2 "$T/bm.qcow2" 64M
qemu-img bitmap --add "$T/bm.qcow2" b0
qemu-img bitmap --add -g 4k "$T/bm.qcow2" b1
qemu-img create -q -f qcow2 -o compat=0.10 "$T/bm-v2.qcow2" 64M
for o in "" "-o cluster_size=4k" "-o cluster_size=2M" "-o compat=0.10"; do
  for f in bm bm-v2 ov; do
    same_out "measure $f.qcow2 $o" measure -O qcow2 $o "$T/$f.qcow2"
    same_out "measure json $f.qcow2 $o" measure --output=json -O qcow2 $o "$T/$f.qcow2"
  done
done
same_out "measure qcow2 to raw" measure -O raw "$T/bm.qcow2"
# amend and resize
"$VDK_IMG" amend -f qcow2 -o compat=0.10 "$T/v.qcow2" || fail "amend"
qemu_clean "$T/v.qcow2"
"$VDK_IMG" resize -q "$T/v.qcow2" 10M || fail "resize"
qemu_clean "$T/v.qcow2"
same_out "info after amend/resize" info --output=json "$T/v.qcow2"

"$VDK_IMG" create -q -f qcow2 -o refcount_bits=8 "$T/r8.qcow2" 1M
expect_fail "compat=0.10 requires refcount_bits=16" "$VDK_IMG" amend -f qcow2 -o compat=0.10 "$T/r8.qcow2"
expect_fail "only supported for image creation" "$VDK_IMG" amend -f qcow2 -o cluster_size=4k "$T/r8.qcow2"
echo "vdk-img qcow2 OK"
