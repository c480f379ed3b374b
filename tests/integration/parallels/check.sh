#!/bin/bash
# SPDX-License-Identifier: MIT
# Parallels in-use flag and check/repair, against qemu-img check:
#  - an image left in use opens read-only only, in both; check reports it
#    and -r all clears it;
#  - a writer killed mid-write leaves the flag set: vdk and qemu agree;
#  - clusters past the end of the file, leaked space, duplicates.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=parallels

mk() {
    rm -f c.img
    "$VDK_IMG" create -q -f parallels -o cluster_size=64k c.img 4M
    qemu-io -f parallels -c "write -P 0x61 0 64k" -c "write -P 0x62 1M 64k" \
        -c "write -P 0x63 3M 64k" c.img >/dev/null
}

# 1. in use
mk
patch c.img 44 596e6f74
untouched c.img "not closed correctly" "$VT" write c.img 0 512 1
qemu-img convert -f parallels -O raw c.img c.raw
"$VT" cat c.img | cmp -s - c.raw || fail "read-only open of an in-use image"
qemu-img check -f parallels c.img >/dev/null 2>&1 && fail "qemu-img check misses the flag"
expect_fail "not closed correctly" "$VDK_IMG" check -f parallels c.img
"$VDK_IMG" check -r all -f parallels c.img 2>&1 | grep -q "Repairing image was not closed" ||
    fail "repair message"
[ "$(le32 c.img 44)" = 0 ] || fail "flag not cleared"
qemu-img check -q -f parallels c.img || fail "qemu-img check after repair"

# 2. a writer killed mid-write: flag set, vdk's check repairs, qemu agrees
mk
qemu-io -f parallels -c "write -P 0x66 2M 64k" -c "sigraise 9" c.img >/dev/null 2>&1 || true
[ "$(le32 c.img 44)" = $((0x746f6e59)) ] || fail "qemu-io killed: flag not set"
cp c.img q.img
qemu-img check -r all -f parallels q.img >/dev/null 2>&1 || true
"$VDK_IMG" check -r all -f parallels c.img >/dev/null 2>&1 || true
qemu-img check -q -f parallels c.img || fail "killed writer: qemu finds errors after vdk's repair"
qemu-img compare -q -f parallels -F parallels c.img q.img || fail "vdk and qemu repair differently"

# same with vdk as the writer
mk
"$VDK_IMG" create -q -f raw big.raw 4M
head -c 4M /dev/urandom > big.raw
( exec "$VDK_IMG" convert -n -f raw -O parallels big.raw c.img ) & pid=$!
sleep 0.05; kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
"$VDK_IMG" check -r all -f parallels c.img >/dev/null 2>&1 || true
qemu-img check -q -f parallels c.img || fail "killed vdk writer: not clean after repair"
"$VT" write c.img 0 512 7

# 3. cluster past EOF (entry 10 -> cluster 200) and leaked space
mk
patch c.img $((64 + 4 * 10)) c8000000
truncate -s +200k c.img
qemu-img check -f parallels c.img >/dev/null 2>&1 && fail "qemu-img misses the bad cluster"
expect_fail "cluster 10 is outside image" "$VDK_IMG" check -f parallels c.img
"$VDK_IMG" check -r all -f parallels c.img >/dev/null 2>&1 || true
qemu-img check -q -f parallels c.img || fail "qemu-img check after repair (3)"
qemu-io -f parallels -c "read -P 0x61 0 64k" -c "read -P 0x63 3M 64k" -c "read -P 0 640k 64k" \
    c.img >/dev/null || fail "repair (3) lost data"

# 4. two entries name one cluster: the later one gets its own copy
mk
e=$(le32 c.img 64)
patch c.img $((64 + 4 * 5)) "$(printf '%02x000000' "$e")"
expect_fail "ERROR duplicate offset in BAT entry 5" "$VDK_IMG" check -f parallels c.img
"$VDK_IMG" check -r all -f parallels c.img >/dev/null 2>&1 || true
"$VDK_IMG" check -q -f parallels c.img || fail "duplicate not repaired"
"$VT" write c.img $((5 * 65536)) 512 0x99
qemu-io -f parallels -c "read -P 0x61 0 64k" -c "read -P 0x99 320k 512" c.img >/dev/null ||
    fail "the copies are not independent"
echo "parallels check ok"
