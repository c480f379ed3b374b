# SPDX-License-Identifier: MIT
# Helpers shared by the VDI, Parallels and VHDX tests (sourced after lib.sh).
#   $VT                  vhd-tool (first argument; FMT= picks the driver)
#   vsize FMT FILE       virtual size qemu-img reports
#   patch FILE OFF HEX   overwrite bytes at OFF with the hex string
#   le32 FILE OFF        read a little-endian u32
#   pattern_raw FILE SIZE  a raw file with random data in a few places
#   untouched FILE CMD.. CMD must fail and leave FILE byte-identical
VT=${1:?usage: $0 VHD_TOOL}
PY=/usr/bin/python3

vsize() {
    qemu-img info -f "$1" --output=json "$2" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

patch() {
    $PY - "$@" <<'PYEOF'
import sys
f, off, hexs = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
with open(f, 'r+b') as fh:
    fh.seek(off); fh.write(bytes.fromhex(hexs))
PYEOF
}

# flip FILE OFFSET: invert one byte.  Damages a checksum for sure, where
# writing a fixed byte would be a no-op when the byte already holds it
# (1 time in 256 for a checksum over random GUIDs).
flip() {
    $PY - "$@" <<'PYEOF'
import sys
f, off = sys.argv[1], int(sys.argv[2], 0)
with open(f, 'r+b') as fh:
    fh.seek(off); b = fh.read(1); fh.seek(off); fh.write(bytes([b[0] ^ 0xff]))
PYEOF
}

le32() {
    $PY -c "import struct,sys; f=open(sys.argv[1],'rb'); f.seek(int(sys.argv[2],0)); print(struct.unpack('<I', f.read(4))[0])" "$1" "$2"
}

pattern_raw() {
    head -c 1536k /dev/urandom > "$1"
    truncate -s "$2" "$1"
    dd if=/dev/urandom of="$1" bs=64k seek=60 count=3 conv=notrunc status=none
    dd if=/dev/urandom of="$1" bs=512 seek=$(( $(stat -c %s "$1") / 512 - 3 )) count=3 \
        conv=notrunc status=none
}

# untouched FILE REGEX CMD...: CMD fails cleanly (expect_fail) and FILE is
# not written.
untouched() {
    local f=$1; shift
    cp "$f" "$T/.before"
    expect_fail "$@"
    cmp -s "$f" "$T/.before" || fail "$f was written by: $*"
}

# far_out GOOD WHAT "OFFSET HEX"...: each patch of a copy of GOOD (an image
# of format $FMT) places a WHAT (block, cluster) far past the end of the
# file.  The image still reads; a write there fails with one warning naming
# it, and neither the write nor the close changes the file.
far_out() {
    local good=$1 what=$2 f; shift 2
    for f in "$@"; do
        cp "$good" "$T/far.img"
        # shellcheck disable=SC2086
        patch "$T/far.img" $f
        "$VDK_IMG" convert -f "$FMT" -O raw "$T/far.img" "$T/far.raw" ||
            fail "reading $FMT with a $what far past the end ($f)"
        untouched "$T/far.img" "a $what at byte [0-9]+ lies past the end of the file" \
            "$VT" write "$T/far.img" 0 512 1
    done
}
