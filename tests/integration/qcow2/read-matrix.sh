#!/bin/bash
# SPDX-License-Identifier: MIT
# Images qemu-img/qemu-io write, over cluster sizes, compat levels, refcount
# widths, extended L2, lazy refcounts, compression, preallocation, backing
# chains, zero writes and discards, read back byte-exact through vdk; and
# vdk's own check finds them clean.
. "$(dirname "$0")/common.sh"
make_raw "$T/src.raw" 4

n=0
for cs in 512 4k 64k 2M; do
  for compat in 0.10 1.1; do
    for rb in 1 16 64; do
      [ "$compat" = 0.10 ] && [ "$rb" != 16 ] && continue
      opts="cluster_size=$cs,compat=$compat,refcount_bits=$rb"
      img=$T/m$n.qcow2; n=$((n + 1))
      qemu-img convert -q -f raw -O qcow2 -o "$opts" "$T/src.raw" "$img"
      qio -c "write -P 0x11 100k 37k" -c "write -z 1M 64k" \
          -c "discard 2M 128k" -c "write -P 0x22 3M 5k" "$img"
      same_as_qemu "$img"
      "$QT" check "$img" >/dev/null || fail "vdk check of $opts"
    done
  done
done

# Extended L2 (subclusters), lazy refcounts, zstd, compression, prealloc.
for opts in extended_l2=on,cluster_size=64k extended_l2=on,cluster_size=16k \
            lazy_refcounts=on compression_type=zstd; do
  img=$T/x$n.qcow2; n=$((n + 1))
  qemu-img create -q -f qcow2 -o "$opts" "$img" 4M
  qio -c "write -P 0x33 4k 4k" -c "write -P 0x44 70k 3k" \
      -c "write -z 200k 8k" -c "write -P 0x55 1M 256k" -c "discard 1M 64k" "$img"
  same_as_qemu "$img"
  "$QT" check "$img" >/dev/null || fail "vdk check of $opts"
done
for ct in zlib zstd; do
  img=$T/c-$ct.qcow2
  qemu-img convert -q -c -f raw -O qcow2 -o compression_type=$ct "$T/src.raw" "$img"
  same_as_qemu "$img"
  "$QT" map "$img" | grep -q compressed || fail "no compressed status for $ct"
  "$QT" check "$img" >/dev/null || fail "vdk check of compressed $ct"
done
for pa in metadata falloc full; do
  img=$T/p-$pa.qcow2
  qemu-img create -q -f qcow2 -o preallocation=$pa "$img" 3M
  qio -c "write -P 0x66 64k 64k" "$img"
  same_as_qemu "$img"
done

# Backing chain with a recorded backing format, relative names.
qemu-img convert -q -f raw -O qcow2 "$T/src.raw" "$T/base.qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$T/mid.qcow2"
qio -c "write -P 0x77 10k 70k" -c "write -z 2M 64k" "$T/mid.qcow2"
qemu-img create -q -f qcow2 -o extended_l2=on -b mid.qcow2 -F qcow2 "$T/top.qcow2"
qio -c "write -P 0x88 5k 2k" -c "discard 1M 64k" "$T/top.qcow2"
same_as_qemu "$T/top.qcow2"
# A backing file shorter than the overlay reads as zeros past its end.
qemu-img create -q -f raw "$T/short.raw" 1M
qemu-img create -q -f qcow2 -b short.raw -F raw "$T/long.qcow2" 3M
same_as_qemu "$T/long.qcow2"

# External data files (names relative to the image directory).
cd "$T"
qemu-img create -q -f qcow2 -o data_file=d1.raw "$T/df.qcow2" 2M
qio -c "write -P 0x99 64k 100k" "$T/df.qcow2"
same_as_qemu "$T/df.qcow2"
qemu-img create -q -f qcow2 -o data_file=d2.raw,data_file_raw=on "$T/dfr.qcow2" 2M
qio -c "write -P 0x98 0 64k" "$T/dfr.qcow2"
same_as_qemu "$T/dfr.qcow2"

# info matches qemu's format-specific block.
for img in "$T/m0.qcow2" "$T/x$((n - 1)).qcow2" "$T/df.qcow2" "$T/c-zstd.qcow2"; do
  want=$(qemu-img info --output=json "$img" | /usr/bin/python3 -c \
      'import json,sys; d=json.load(sys.stdin); print(json.dumps(d["format-specific"], sort_keys=True))')
  got=$("$QT" info "$img" | /usr/bin/python3 -c \
      'import json,sys; d=json.load(sys.stdin); print(json.dumps(d["format-specific"], sort_keys=True))')
  [ "$want" = "$got" ] || fail "info of $img: $got, qemu: $want"
done
echo "read matrix: $n images OK"
