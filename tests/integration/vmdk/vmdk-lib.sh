# SPDX-License-Identifier: MIT
# Helpers shared by the VMDK tests (sourced after lib.sh).
#   $VT                  vhd-tool, opening images as vmdk (FMT=vmdk)
#   desc FILE            the descriptor text of a VMDK (embedded or not),
#                        with CID lines and the image's own base name
#                        replaced by placeholders, for comparisons
#   hdr FILE             hex of the 512-byte sparse header
#   patch FILE OFF HEX   overwrite bytes at OFF with the hex string
VT=${1:?usage: $0 VHD_TOOL}
export FMT=vmdk
PY=/usr/bin/python3

desc() {
    local f=$1 base
    base=$(basename "$f" .vmdk)
    if [ "$(head -c 4 "$f")" = KDMV ]; then
        dd if="$f" bs=512 skip=1 count=20 status=none | tr -d '\0'
    else
        cat "$f"
    fi | sed -e 's/^CID=.*/CID=X/' -e 's/^parentCID=[0-9a-e].*/parentCID=P/' \
             -e "s/\"$base/\"NAME/"
}

hdr() { head -c 512 "$1" | od -An -tx1 -v | tr -d ' \n'; }

patch() {
    $PY - "$@" <<'PYEOF'
import sys
f, off, hexs = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
with open(f, 'r+b') as fh:
    fh.seek(off); fh.write(bytes.fromhex(hexs))
PYEOF
}
