#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad VHDX structures: headers, region table, metadata, parent locator,
# BAT, log.  Each gets a one-line error, no crash, and the file is not
# written (also not when opened for writing).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
. "$VDK_SRC/tests/integration/vhdx/vhdx-lib.sh"
cd "$T"
qemu-img create -q -f vhdx -o block_size=1M good.vhdx 8M
qemu-io -f vhdx -c "write -P 1 0 4k" good.vhdx >/dev/null
meta=$(vhdx_region good.vhdx meta)
bat=$(vhdx_region good.vhdx bat)

bad() { # OFFSET HEX REGEX [nosum]
    cp good.vhdx b.vhdx
    patch b.vhdx "$1" "$2"
    [ "${4:-}" = nosum ] || vhdx_fix_sums b.vhdx
    untouched b.vhdx "$3" "$VDK_IMG" info -f vhdx b.vhdx
    untouched b.vhdx "$3" "$VT" write b.vhdx 0 512 1
}
# file identifier, headers
bad 0 00 "not a VHDX image"
cp good.vhdx h.vhdx; flip h.vhdx 65540; flip h.vhdx 131076
untouched h.vhdx "No valid VHDX header" "$VDK_IMG" info -f vhdx h.vhdx
cp good.vhdx h.vhdx; patch h.vhdx 65602 02; patch h.vhdx 131138 02; vhdx_fix_sums h.vhdx
untouched h.vhdx "No valid VHDX header" "$VDK_IMG" info -f vhdx h.vhdx   # version 2 in both
cp good.vhdx h1.vhdx; flip h1.vhdx 65540                   # one bad header: the other is used
"$VDK_IMG" info -f vhdx h1.vhdx >/dev/null || fail "one bad header refused"
badh() { # FIELD_OFFSET HEX REGEX: the same field in both headers
    cp good.vhdx b.vhdx
    patch b.vhdx $((65536 + $1)) "$2"; patch b.vhdx $((131072 + $1)) "$2"
    vhdx_fix_sums b.vhdx
    untouched b.vhdx "$3" "$VDK_IMG" info -f vhdx b.vhdx
    untouched b.vhdx "$3" "$VT" write b.vhdx 0 512 1
}
badh 64 0100 "log version"
badh 72 0000000010000000 "log .* outside the file"
badh 72 0080000000000000 "log .* misaligned"
badh 68 00000010 "log .* outside the file"
# region table
bad $((196608 + 8)) ff0f0000 "region table has"
bad $((196608 + 48)) 6677c22d23f600429d64115e9bfd4a08 "appears twice"
bad $((196608 + 64)) "$(printf '%016x' $bat | sed 's/\(..\)/\1 /g' | awk '{for(i=8;i>0;i--) printf "%s", $i}')" "overlap"
bad $((196608 + 48)) 0102030405060708090a0b0c0d0e0f10 "lacks the metadata region"
cp good.vhdx r.vhdx; patch r.vhdx $((196608 + 8)) 03000000
patch r.vhdx $((196608 + 80)) 0102030405060708090a0b0c0d0e0f1000006000000000000000100001000000
vhdx_fix_sums r.vhdx
untouched r.vhdx "required but unknown" "$VDK_IMG" info -f vhdx r.vhdx
bad $((196608 + 40)) 00000010 "outside the file"
cp good.vhdx rr.vhdx; flip rr.vhdx 196612; flip rr.vhdx 262148
untouched rr.vhdx "No valid VHDX region table" "$VDK_IMG" info -f vhdx rr.vhdx
# metadata
bad "$meta" 00 "bad signature"
bad $((meta + 10)) ff0f "metadata table has"
bad $((meta + 65536)) 00003000 "block size"
bad $((meta + 65536)) 00000020 "block size"
bad $((meta + 65536 + 32)) 00040000 "sector sizes"
bad $((meta + 65536 + 8)) 0000000000000100 "exceeds 64 TiB|multiple"
bad $((meta + 65536 + 8)) 0102000000000000 "not a multiple"
bad $((meta + 48)) 00001000 "outside the region"
bad $((meta + 32)) 0102030405060708090a0b0c0d0e0f10 "unsupported required VHDX metadata item"
bad $((meta + 64)) 3767a1ca36fa434db3b633f0aa44e76b "appears twice"
bad $((meta + 65536 + 4)) 02000000 "without a parent locator"
bad $((meta + 52)) 04000000 "has 4 bytes, expected 8"
# BAT: entries past the file, over metadata, undefined states
bad "$bat" "$(printf '%02x' 4)" "bad entries"
bad $((bat + 8)) 0600a00f00000000 "bad entries"
bad $((bat + 16)) 0700100000000000 "bad entries"
# a truncated file
head -c 300000 good.vhdx > t.vhdx
untouched t.vhdx "outside the file|No valid|not a VHDX" "$VDK_IMG" info -f vhdx t.vhdx
head -c 1000 good.vhdx > t2.vhdx
untouched t2.vhdx "not a VHDX" "$VDK_IMG" info -f vhdx t2.vhdx
echo "vhdx bad images ok"
