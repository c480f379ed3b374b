# SPDX-License-Identifier: MIT
# Helpers shared by the VHD tests (sourced after lib.sh).
#   $VT                 vhd-tool (first argument of every VHD test)
#   vsize FILE          virtual size qemu-img reports for a vpc image
#   patch FILE OFF HEX  overwrite bytes at OFF with the hex string
#   fixsum FILE OFF LEN CSUMOFF
#                       recompute a VHD checksum over [OFF, OFF+LEN)
#   footer_fix FILE     recompute the checksums of the end footer and
#                       of the copy at offset 0
VT=${1:?usage: $0 VHD_TOOL}
PY=/usr/bin/python3

vsize() {
    qemu-img info -f vpc --output=json "$1" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p'
}

patch() {
    $PY - "$@" <<'PYEOF'
import sys
f, off, hexs = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
with open(f, 'r+b') as fh:
    fh.seek(off); fh.write(bytes.fromhex(hexs))
PYEOF
}

fixsum() {
    $PY - "$@" <<'PYEOF'
import sys, struct
f, off, ln, co = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0), int(sys.argv[4], 0)
with open(f, 'r+b') as fh:
    fh.seek(off); b = bytearray(fh.read(ln))
    b[co:co + 4] = b'\0\0\0\0'
    s = (~sum(b)) & 0xffffffff
    fh.seek(off + co); fh.write(struct.pack('>I', s))
PYEOF
}

footer_fix() {
    local end=$(( $(stat -c %s "$1") - 512 ))
    fixsum "$1" "$end" 512 64
    if [ "$(head -c 8 "$1")" = conectix ]; then fixsum "$1" 0 512 64; fi
}

# patch_footer FILE FIELD_OFF HEX: patch the end footer and the copy at 0
patch_footer() {
    local end=$(( $(stat -c %s "$1") - 512 ))
    patch "$1" $(( end + $2 )) "$3"
    if [ "$(head -c 8 "$1")" = conectix ]; then patch "$1" "$2" "$3"; fi
    footer_fix "$1"
}
