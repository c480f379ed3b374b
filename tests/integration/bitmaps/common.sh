# SPDX-License-Identifier: MIT
# Shared by the persistent-bitmap tests: source after lib.sh.
#   qmap IMG NAME      - the dirty map of bitmap NAME as qemu-nbd -B serves it
#                        (nbdinfo --map, the server started by socket activation)
#   vmap IMG NAME      - the same from vdk-nbd -B
#   binfo TOOL IMG     - the "bitmaps" list of TOOL info --output=json (sorted keys)
#   same_bitmaps A B   - qemu-img info shows the same bitmaps for both images
#   qemu_clean IMG     - qemu-img check finds nothing
: "${VDK_NBD:?run through meson test}"
PY=/usr/bin/python3

qmap() { nbdinfo --map="qemu:dirty-bitmap:$2" -- [ qemu-nbd -r -f qcow2 -B "$2" "$1" ]; }
vmap() { nbdinfo --map="qemu:dirty-bitmap:$2" -- [ "$VDK_NBD" -r -f qcow2 -B "$2" "$1" ] 2>>"$T/nbd.log"; }

binfo() {
    "$1" info -U --output=json "$2" | $PY -c '
import json, sys
d = json.load(sys.stdin).get("format-specific", {}).get("data", {})
print(json.dumps(d.get("bitmaps", []), sort_keys=True))'
}

same_bitmaps() {
    local a b
    a=$(binfo qemu-img "$1") && b=$(binfo qemu-img "$2") || fail "qemu-img info failed"
    [ "$a" = "$b" ] || fail "bitmaps differ: $1: $a; $2: $b"
}

qemu_clean() {
    qemu-img check "$1" >"$T/.check" 2>&1 || { cat "$T/.check" >&2; fail "qemu-img check $1"; }
}

# Both dirty maps of NAME equal (qemu-nbd serving each image).
same_dirty() {
    qmap "$1" "$3" >"$T/.m1" || fail "qemu-nbd -B $3 on $1"
    qmap "$2" "$3" >"$T/.m2" || fail "qemu-nbd -B $3 on $2"
    cmp -s "$T/.m1" "$T/.m2" || { diff "$T/.m1" "$T/.m2" >&2; fail "dirty map of $3 differs: $4"; }
}
