#!/bin/bash
# SPDX-License-Identifier: MIT
# VDI check and repair: map entries past the map's size, entries past the
# end of the file, two entries sharing a block, a wrong allocated-block
# count.  qemu-img check finds the same errors (those it knows) and, after
# `vdk-img check -r all`, none; the guest data of the good blocks stays.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=vdi

mk() {
    rm -f c.vdi
    "$VDK_IMG" create -q -f vdi c.vdi 8M
    qemu-io -f vdi -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 1M" -c "write -P 0x63 5M 1M" \
        c.vdi >/dev/null
}
entry() { printf '%02x%02x%02x%02x' $(( $1 & 255 )) $(( $1 >> 8 & 255 )) $(( $1 >> 16 & 255 )) $(( $1 >> 24 )); }

# clean image: both agree
mk
"$VDK_IMG" check c.vdi | grep -q "No errors" || fail "clean image reported dirty"

# 1. entry beyond the map (block 3 of 8 says block 99)
mk
patch c.vdi $((512 + 4 * 3)) "$(entry 99)"
expect_fail "too large" "$VDK_IMG" check c.vdi
qemu-img check -f vdi c.vdi >/dev/null 2>&1 && fail "qemu-img misses the bad entry"
"$VDK_IMG" check -r all c.vdi >/dev/null 2>&1 || true
qemu-img check -q -f vdi c.vdi || fail "qemu-img still finds errors after repair (1)"
"$VDK_IMG" check -q c.vdi || fail "vdk still finds errors after repair (1)"

# 2. two entries share a block (entry 7 -> block of entry 0)
mk
patch c.vdi $((512 + 4 * 7)) "$(entry 0)"
expect_fail "also used by" "$VDK_IMG" check c.vdi
"$VDK_IMG" check -r all c.vdi >/dev/null 2>&1 || true
qemu-img check -q -f vdi c.vdi || fail "qemu-img finds errors after repair (2)"
qemu-io -f vdi -c "read -P 0x61 0 1M" -c "read -P 0 7M 1M" c.vdi >/dev/null ||
    fail "repair (2) changed the good block or kept the duplicate"

# 3. header count too high (a crash after the header, before the map)
mk
patch c.vdi $((0x184)) "$(entry 5)"
expect_fail "allocated blocks mismatch, is 3, should be 5" "$VDK_IMG" check c.vdi
"$VDK_IMG" check -r all c.vdi >/dev/null 2>&1 || true
[ "$(le32 c.vdi 0x184)" = 3 ] || fail "count not repaired"
qemu-img check -q -f vdi c.vdi || fail "qemu-img finds errors after repair (3)"

# 4. entry whose block lies past the end of the file, and the hole it
#    leaves: the last block moves down so the blocks in use are 0..n-1
mk
patch c.vdi $((512 + 4 * 1)) "$(entry 3)"     # block 1 of the guest -> data block 3 (EOF)
patch c.vdi $((0x184)) "$(entry 4)"
# (a warning only: it reads as zeros, and qemu-img check finds no error)
"$VDK_IMG" check c.vdi >/dev/null 2>c.err || { cat c.err >&2; fail "block past EOF: exit"; }
grep -q "warning: block index 1 maps block 3 past the end of the file" c.err ||
    fail "block past EOF: no warning"
qemu-img check -q -f vdi c.vdi || fail "qemu-img check finds an error in (4)"
patch c.vdi $((512 + 4 * 2)) "$(entry 7)"     # guest block 2 (was data 1) -> too large
"$VDK_IMG" check -r all c.vdi >/dev/null 2>&1 || true
"$VDK_IMG" check -q c.vdi || fail "vdk finds errors after repair (4)"
qemu-img check -q -f vdi c.vdi || fail "qemu-img finds errors after repair (4)"
qemu-io -f vdi -c "read -P 0x61 0 1M" -c "read -P 0x63 5M 1M" c.vdi >/dev/null ||
    fail "repair (4) lost good data"
# still writable by both afterwards
qemu-io -f vdi -c "write -P 0x70 6M 1M" c.vdi >/dev/null
"$VT" write c.vdi 7340032 4096 0x71
qemu-img check -q -f vdi c.vdi || fail "writes after repair (4) broke the image"
qemu-io -f vdi -c "read -P 0x61 0 1M" -c "read -P 0x63 5M 1M" -c "read -P 0x70 6M 1M" \
    -c "read -P 0x71 7M 4k" c.vdi >/dev/null || fail "data after repair and writes"

# JSON output has qemu's fields
mk
"$VDK_IMG" check --output=json c.vdi | grep -q '"format": "vdi"' || fail "check json"
echo "vdi check ok"
