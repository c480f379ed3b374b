#!/bin/bash
# SPDX-License-Identifier: MIT
# Images vdk creates and writes pass `qemu-img check` with no leaks, equal
# their source under `qemu-img compare`, and survive qemu-io writes.
# Also: compression no larger than qemu's, COW from a backing file, zero
# writes and discards, resize, amend, rebase, measure and repair.
. "$(dirname "$0")/common.sh"
make_raw "$T/src.raw" 4
n=0
for opts in cluster_size=512 cluster_size=4k,refcount_bits=1 cluster_size=64k \
            cluster_size=2M,refcount_bits=64 compat=0.10 extended_l2=on \
            extended_l2=on,cluster_size=16k lazy_refcounts=on refcount_bits=8 \
            preallocation=metadata preallocation=falloc preallocation=full \
            cluster_size=512,refcount_bits=64; do
  img=$T/w$n.qcow2; n=$((n + 1))
  "$QT" create "$img" "size=4M,$opts" || fail "create $opts"
  qemu_clean "$img"
  "$QT" write "$img" "$T/src.raw" -t 2 || fail "write $opts"
  qemu_clean "$img"
  qemu-img compare -q -f qcow2 -F raw "$img" "$T/src.raw" || fail "compare $opts"
  # Partial-cluster writes (copy-on-write), zeroes, discard, then qemu-io.
  "$QT" io "$img" write 70000 5000 0x5a || fail "io write $opts"
  "$QT" io "$img" zero 1048576 131072 || fail "io zero $opts"
  "$QT" io "$img" zero-unmap 2097152 65536 || fail "io zero-unmap $opts"
  "$QT" io "$img" discard 3145728 131072 || fail "io discard $opts"
  qemu_clean "$img"
  same_as_qemu "$img"
  qio -c "write -P 0x6b 123k 77k" "$img"
  qemu_clean "$img"
  same_as_qemu "$img"
  "$QT" check "$img" >/dev/null || fail "vdk check after qemu-io, $opts"
done

# Tiny metadata caches: every table access evicts (write-back ordering).
"$QT" create "$T/sc.qcow2" "size=4M,cluster_size=512,refcount_bits=4" || fail "create sc"
QCOW2_OPTS=l2-cache-size=1k,refcount-cache-size=1k "$QT" write "$T/sc.qcow2" "$T/src.raw" -t 2 ||
    fail "write with tiny caches"
QCOW2_OPTS=l2-cache-size=1k,refcount-cache-size=1k "$QT" io "$T/sc.qcow2" discard 65536 1048576 ||
    fail "discard with tiny caches"
qemu_clean "$T/sc.qcow2"
QCOW2_OPTS=l2-cache-size=1k "$QT" cat "$T/sc.qcow2" qcow2 >"$T/sc.raw" || fail "read tiny cache"
qemu-img convert -O raw "$T/sc.qcow2" "$T/sc-q.raw"
same_file "$T/sc.raw" "$T/sc-q.raw"
expect_fail "invalid option 'bogus'" env QCOW2_OPTS=bogus=1 "$QT" cat "$T/sc.qcow2" qcow2

# A size that is not a multiple of the cluster size: the last, partial
# cluster is written compressed, zeroed, discarded and rewritten.
head -c 1000448 "$T/src.raw" >"$T/odd.raw"
for o in "" ",extended_l2=on" ",cluster_size=512" ",compat=0.10"; do
  rm -f "$T/odd.qcow2"
  "$QT" create "$T/odd.qcow2" "size=1000448$o" || fail "create odd $o"
  "$QT" write "$T/odd.qcow2" "$T/odd.raw" -c || fail "compressed odd $o"
  qemu-img compare -q -f qcow2 -F raw "$T/odd.qcow2" "$T/odd.raw" || fail "compare odd $o"
  "$QT" io "$T/odd.qcow2" zero 983040 17408 || fail "zero tail $o"
  "$QT" io "$T/odd.qcow2" discard 917504 82944 || fail "discard tail $o"
  "$QT" io "$T/odd.qcow2" write 999000 1448 0x77 || fail "write tail $o"
  qemu_clean "$T/odd.qcow2"
  same_as_qemu "$T/odd.qcow2"
done

# Compressed clusters sharing host clusters never exceed narrow refcounts.
for rb in 1 2 4; do
  "$QT" create "$T/cr.qcow2" "size=4M,cluster_size=4k,refcount_bits=$rb"
  "$QT" write "$T/cr.qcow2" "$T/src.raw" -c -t 2 || fail "compressed, refcount_bits=$rb"
  qemu_clean "$T/cr.qcow2"
  qemu-img compare -q -f qcow2 -F raw "$T/cr.qcow2" "$T/src.raw" || fail "compare cr $rb"
done

# Compressed writes: zlib and zstd, no larger than qemu-img convert -c.
for ct in zlib zstd; do
  "$QT" create "$T/c.qcow2" "size=4M,compression_type=$ct"
  "$QT" write "$T/c.qcow2" "$T/src.raw" -c -t 2 || fail "compressed write $ct"
  qemu_clean "$T/c.qcow2"
  qemu-img compare -q -f qcow2 -F raw "$T/c.qcow2" "$T/src.raw" || fail "compare c $ct"
  qemu-img convert -c -f raw -O qcow2 -o compression_type=$ct "$T/src.raw" "$T/qc.qcow2"
  [ "$(stat -c %s "$T/c.qcow2")" -le "$(stat -c %s "$T/qc.qcow2")" ] ||
      fail "compressed $ct image larger than qemu's"
  # Overwrite compressed clusters in place and partially.
  "$QT" io "$T/c.qcow2" write 1050000 3000 0x17 || fail "overwrite compressed"
  qemu_clean "$T/c.qcow2"
  same_as_qemu "$T/c.qcow2"
done

# Copy-on-write from a backing file, with and without extended L2.
qemu-img convert -q -f raw -O qcow2 "$T/src.raw" "$T/base.qcow2"
for o in "" ",extended_l2=on"; do
  rm -f "$T/ov.qcow2"
  "$QT" create "$T/ov.qcow2" "backing_file=base.qcow2,backing_fmt=qcow2$o" ||
      fail "create overlay$o"
  [ "$(qemu-img info --output=json "$T/ov.qcow2" | grep -c '"backing-filename-format": "qcow2"')" = 1 ] ||
      fail "backing format not recorded"
  "$QT" io "$T/ov.qcow2" write 100000 3000 0x21 || fail "cow write"
  "$QT" io "$T/ov.qcow2" write 1048000 70000 0x22 || fail "cow write 2"
  "$QT" io "$T/ov.qcow2" discard 2097152 65536 || fail "discard over backing"
  qemu_clean "$T/ov.qcow2"
  same_as_qemu "$T/ov.qcow2"
done

# Writes to an image with an internal snapshot leave the snapshot intact
# (shared clusters and L2 tables are copied, not overwritten).
qemu-img create -q -f qcow2 "$T/s.qcow2" 4M
qio -c "write -P 0x11 0 1M" "$T/s.qcow2"
qemu-img snapshot -c s1 "$T/s.qcow2"
qio -c "write -P 0x22 512k 1M" "$T/s.qcow2"
qemu-img convert -f qcow2 -O raw -l snapshot.name=s1 "$T/s.qcow2" "$T/s1-before.raw"
"$QT" io "$T/s.qcow2" write 100000 300000 0x33 || fail "write over snapshot"
"$QT" io "$T/s.qcow2" discard 0 65536 || fail "discard over snapshot"
qemu_clean "$T/s.qcow2"
qemu-img convert -f qcow2 -O raw -l snapshot.name=s1 "$T/s.qcow2" "$T/s1-after.raw"
same_file "$T/s1-before.raw" "$T/s1-after.raw"
same_as_qemu "$T/s.qcow2"

# External data files written by vdk; a raw one stays equal to the guest.
# (qemu opens a relative data file name from the current directory, vdk
# from the image's directory: run from the image's directory.)
cd "$T"
for raw in off on; do
  (cd "$T" && "$QT" create df.qcow2 "size=4M,data_file=df-$raw.raw,data_file_raw=$raw") ||
      fail "create data_file_raw=$raw"
  "$QT" write "$T/df.qcow2" "$T/src.raw" || fail "write data file $raw"
  "$QT" io "$T/df.qcow2" write 70000 5000 0x5a || fail "cow data file $raw"
  "$QT" io "$T/df.qcow2" discard 1048576 131072 || fail "discard data file $raw"
  "$QT" io "$T/df.qcow2" zero 2097152 65536 || fail "zero data file $raw"
  qemu_clean "$T/df.qcow2"
  same_as_qemu "$T/df.qcow2"
  if [ $raw = on ]; then
    qemu-img convert -O raw "$T/df.qcow2" "$T/df.guest"
    same_file "$T/df.guest" "$T/df-on.raw"
  fi
  rm -f "$T/df.qcow2"
done

# Preallocation over a backing file (extended L2: host clusters only).
"$QT" create "$T/pb.qcow2" "extended_l2=on,preallocation=metadata,backing_file=base.qcow2,backing_fmt=qcow2" ||
    fail "create preallocated overlay"
"$QT" io "$T/pb.qcow2" write 100000 3000 0x21 || fail "write preallocated overlay"
qemu_clean "$T/pb.qcow2"
same_as_qemu "$T/pb.qcow2"
cmp -s <(qemu-img map --output=json "$T/pb.qcow2") <("$VDK_IMG" map --output=json "$T/pb.qcow2") ||
    fail "map of a preallocated overlay differs from qemu-img's"

# Refcount table growth: small clusters, narrow refcounts, many clusters.
"$QT" create "$T/g.qcow2" "size=4M,cluster_size=512,refcount_bits=64" || fail "create g"
"$QT" write "$T/g.qcow2" "$T/src.raw" || fail "write g"
qemu_clean "$T/g.qcow2"
qemu-img compare -q -f qcow2 -F raw "$T/g.qcow2" "$T/src.raw" || fail "compare g"

# Resize, amend, rebase.
"$QT" create "$T/r.qcow2" "size=1M,cluster_size=4k"
"$QT" io "$T/r.qcow2" write 0 1048576 0x31
"$QT" resize "$T/r.qcow2" 300M || fail "grow"
"$QT" io "$T/r.qcow2" write 299M 4096 0x32 || fail "write after grow"
qemu_clean "$T/r.qcow2"
"$QT" resize "$T/r.qcow2" 512k shrink || fail "shrink"
qemu_clean "$T/r.qcow2"
[ "$(qemu-img info --output=json "$T/r.qcow2" | grep -c '"virtual-size": 524288')" = 1 ] ||
    fail "shrunk size"
same_as_qemu "$T/r.qcow2"
"$QT" create "$T/a.qcow2" "size=2M"
"$QT" io "$T/a.qcow2" write 0 65536 0x41
"$QT" io "$T/a.qcow2" zero 65536 65536
"$QT" amend "$T/a.qcow2" compat=0.10 || fail "amend to 0.10"
qemu_clean "$T/a.qcow2"
qemu-img info "$T/a.qcow2" | grep -q "compat: 0.10" || fail "not downgraded"
same_as_qemu "$T/a.qcow2"
"$QT" amend "$T/a.qcow2" compat=1.1,lazy_refcounts=on || fail "amend to 1.1"
qemu-img info "$T/a.qcow2" | grep -q "lazy refcounts: true" || fail "not upgraded"
qemu_clean "$T/a.qcow2"
"$QT" rebase "$T/a.qcow2" base.qcow2 qcow2 || fail "rebase -u"
qemu-img info "$T/a.qcow2" | grep -q "backing file: base.qcow2" || fail "rebase name"
qemu_clean "$T/a.qcow2"

# Measure equals qemu-img measure.
for o in "" cluster_size=512,refcount_bits=1 extended_l2=on preallocation=full; do
  want=$(qemu-img measure -O qcow2 ${o:+-o $o} --size 3G)
  got=$("$QT" measure "size=3G${o:+,$o}") || fail "measure $o"
  [ "$want" = "$got" ] || fail "measure $o: vdk '$got' qemu '$want'"
  want=$(qemu-img measure -O qcow2 ${o:+-o $o} -f raw "$T/src.raw")
  got=$("$QT" measure "$o" "$T/src.raw") || fail "measure src $o"
  [ "$want" = "$got" ] || fail "measure src $o: vdk '$got' qemu '$want'"
done

# Leak repair: leak clusters by hand (refcount +1) and let vdk fix them.
qemu-img create -q -f qcow2 "$T/l.qcow2" 1M
qio -c "write 0 64k" "$T/l.qcow2"
/usr/bin/python3 - "$T/l.qcow2" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b')
h = f.read(104)
rt = struct.unpack('>Q', h[48:56])[0]
f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
f.seek(0, 2); end = f.tell() // 65536
f.seek(rb + 2 * end); f.write(struct.pack('>H', 1))   # one cluster past the end: leaked
f.seek(end * 65536); f.write(b'\0' * 65536)
PY
rc=0; qemu-img check "$T/l.qcow2" >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "qemu-img does not see the leak (rc $rc)"
rc=0; "$QT" check "$T/l.qcow2" >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "leak not reported (rc $rc)"
"$QT" check "$T/l.qcow2" leaks >/dev/null 2>&1 || fail "leak repair"
qemu_clean "$T/l.qcow2"
echo "write matrix: $n images OK"
