#!/bin/bash
# SPDX-License-Identifier: MIT
# VHDX check and repair: BAT entries past the end of the file, blocks over
# the metadata, blocks over each other.  Open refuses such images with one
# line; check names them; -r all resets them and qemu-img check is clean.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"

mk() {
    rm -f c.vhdx
    "$VDK_IMG" create -q -f vhdx -o block_size=1M c.vhdx 8M
    qemu-io -f vhdx -c "write -P 0x61 0 1M" -c "write -P 0x62 2M 1M" -c "write -P 0x63 5M 1M" \
        c.vhdx >/dev/null
    bat=$(vhdx_region c.vhdx bat)
}
entry() { printf '%016x' $(( ($1 << 20) | $2 )) | sed 's/\(..\)/\1 /g' | awk '{for(i=8;i>0;i--) printf "%s", $i}'; }

mk
"$VDK_IMG" check c.vhdx | grep -q "No errors" || fail "clean image reported dirty"

# 1. past EOF (block 7 -> 500 MiB)
mk
patch c.vhdx $((bat + 8 * 7)) "$(entry 500 6)"
untouched c.vhdx "bad entries" "$VDK_IMG" info -f vhdx c.vhdx
expect_fail "points after end of file" "$VDK_IMG" check -f vhdx c.vhdx
"$VDK_IMG" check -r all -f vhdx c.vhdx >/dev/null 2>&1 || true
qemu-img check -q -f vhdx c.vhdx || fail "qemu-img check after repair (1)"
qemu-io -f vhdx -c "read -P 0x61 0 1M" -c "read -P 0x63 5M 1M" -c "read -P 0 7M 1M" c.vhdx \
    >/dev/null || fail "repair (1) data"

# 2. two blocks share space (block 6 -> block 0's offset)
mk
off=$($PY -c "import struct; f=open('c.vhdx','rb'); f.seek($bat); print(struct.unpack('<Q', f.read(8))[0] >> 20)")
patch c.vhdx $((bat + 8 * 6)) "$(entry "$off" 6)"
untouched c.vhdx "bad entries" "$VDK_IMG" info -f vhdx c.vhdx
expect_fail "overlaps the block of entry 0" "$VDK_IMG" check -f vhdx c.vhdx
"$VDK_IMG" check -r all -f vhdx c.vhdx >/dev/null 2>&1 || true
"$VDK_IMG" check -q -f vhdx c.vhdx || fail "vdk finds errors after repair (2)"
qemu-io -f vhdx -c "read -P 0x61 0 1M" -c "read -P 0 6M 1M" c.vhdx >/dev/null || fail "repair (2) data"

# 3. a block over the metadata region
mk
meta=$(vhdx_region c.vhdx meta)
patch c.vhdx $((bat + 8 * 4)) "$(entry $((meta >> 20)) 6)"
expect_fail "VHDX region [0-9]+-[0-9]+ overlaps with region $meta-$((meta + 1048576))" "$VDK_IMG" check -f vhdx c.vhdx
"$VDK_IMG" check -r all -f vhdx c.vhdx >/dev/null 2>&1 || true
qemu-img check -q -f vhdx c.vhdx || fail "qemu-img check after repair (3)"
"$VT" write c.vhdx 4194304 4096 0x70
qemu-io -f vhdx -c "read -P 0x70 4M 4k" -c "read -P 0x62 2M 1M" c.vhdx >/dev/null ||
    fail "writes after repair (3)"

# 4. undefined block state
mk
patch c.vhdx $((bat + 8 * 3)) 0400000000000000
expect_fail "undefined block state" "$VDK_IMG" check -f vhdx c.vhdx
"$VDK_IMG" check -r all -f vhdx c.vhdx >/dev/null 2>&1 || true
"$VDK_IMG" check -q -f vhdx c.vhdx || fail "repair (4)"
echo "vhdx check ok"
