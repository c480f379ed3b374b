#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img bitmap beside qemu-img bitmap on twin images (same bitmaps in
# qemu-img info, qemu-img check clean, same messages for bad input);
# convert --bitmaps; damaged bitmap directories and tables; the autoclear
# rule.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/bitmaps/common.sh"

# Both tools run the same arguments on their twin (the image is the first
# argument ending in .qcow2); stderr must match, prefix aside.
twin() {
    local args=("$@") qa=() va=()
    for a in "${args[@]}"; do
        case $a in *TWIN*) qa+=("${a//TWIN/$T/q}"); va+=("${a//TWIN/$T/v}");;
                   *) qa+=("$a"); va+=("$a");; esac
    done
    local qrc=0 vrc=0
    qemu-img "${qa[@]}" >/dev/null 2>"$T/.qe" || qrc=$?
    "$VDK_IMG" "${va[@]}" >/dev/null 2>"$T/.ve" || vrc=$?
    [ "$vrc" -lt 128 ] || fail "vdk-img crashed: ${va[*]}"
    if { [ "$qrc" -eq 0 ] && [ "$vrc" -ne 0 ]; } || { [ "$qrc" -ne 0 ] && [ "$vrc" -eq 0 ]; }; then
        cat "$T/.ve" >&2; fail "exit $vrc, qemu-img $qrc: $*"
    fi
    # qemu names the node ('#block123'), vdk the file.
    sed -i -e 's/^vdk-img:/qemu-img:/' -e "s|in '[^']*': |in NODE: |" \
        -e "s|to $T/[^:]*:|to NODE:|" "$T/.ve"
    sed -i -e "s|in '#block[0-9]*': |in NODE: |" -e "s|to #block[0-9]*:|to NODE:|" "$T/.qe"
    cmp -s "$T/.qe" "$T/.ve" || { diff "$T/.qe" "$T/.ve" >&2; fail "stderr differs: $*"; }
}

qemu-img create -q -f qcow2 "$T/q.qcow2" 64M
cp "$T/q.qcow2" "$T/v.qcow2"
long=$(printf 'n%.0s' $(seq 1024))
twin bitmap --add TWIN.qcow2 b0
twin bitmap --add -g 1M TWIN.qcow2 b1
twin bitmap --add -g 512 --disable TWIN.qcow2 b2
twin bitmap --add -g 2G TWIN.qcow2 huge
twin bitmap --add -g 0 TWIN.qcow2 dflt
twin bitmap --add TWIN.qcow2 b0                       # duplicate
twin bitmap --add TWIN.qcow2 "$long"                  # name too long
twin bitmap --add TWIN.qcow2 ''                        # empty name
for g in 256 3000 4G 1T; do twin bitmap --add -g $g TWIN.qcow2 g; done
twin bitmap --add -g abc TWIN.qcow2 g
twin bitmap --remove TWIN.qcow2 nope
twin bitmap --merge nope TWIN.qcow2 b0
twin bitmap TWIN.qcow2 b0                             # no action
twin bitmap -g 64k --remove TWIN.qcow2 b0
twin bitmap --merge b0 -F qcow2 TWIN.qcow2 b1
twin bitmap --add TWIN.qcow2
same_bitmaps "$T/q.qcow2" "$T/v.qcow2"
qemu_clean "$T/v.qcow2"

# Data written by qemu-io, then every operation.
for k in q v; do
    retry_setup qemu-io -f qcow2 -c 'write 0 128k' -c 'write 5M 1M' -c 'write 63M 512' \
        "$T/$k.qcow2" >/dev/null
done
twin bitmap --disable TWIN.qcow2 b0
twin bitmap --enable TWIN.qcow2 b2
twin bitmap --merge b0 TWIN.qcow2 b1
twin bitmap --merge b0 TWIN.qcow2 b2
twin bitmap --clear TWIN.qcow2 b0
twin bitmap --add -g 128k --merge b2 --disable TWIN.qcow2 b3
twin bitmap --remove TWIN.qcow2 dflt
same_bitmaps "$T/q.qcow2" "$T/v.qcow2"
for b in b0 b1 b2 b3 huge; do same_dirty "$T/q.qcow2" "$T/v.qcow2" $b "after the operations"; done
qemu_clean "$T/v.qcow2"
# --disabled (vdk's spelling of --add --disable).
"$VDK_IMG" bitmap --add --disabled "$T/v.qcow2" off
qemu-img bitmap --add --disable "$T/q.qcow2" off
same_bitmaps "$T/q.qcow2" "$T/v.qcow2"
expect_fail 'only supported with --add' "$VDK_IMG" bitmap --remove --disabled "$T/v.qcow2" off

# --merge from another image (-b/-F).
qemu-img create -q -f qcow2 "$T/other.qcow2" 64M
qemu-img bitmap --add -g 4k "$T/other.qcow2" ob
retry_setup qemu-io -f qcow2 -c 'write 20M 12k' -c 'write 30M 1' "$T/other.qcow2" >/dev/null
twin bitmap --merge ob -b "$T/other.qcow2" -F qcow2 TWIN.qcow2 b1
twin bitmap --merge nope -b "$T/other.qcow2" -F qcow2 TWIN.qcow2 b1
same_dirty "$T/q.qcow2" "$T/v.qcow2" b1 "after --merge -b"
qemu_clean "$T/v.qcow2"

# Other formats and qcow2 v2.
qemu-img create -q -f raw "$T/q.raw" 1M; cp "$T/q.raw" "$T/v.raw"
twin bitmap -f raw --add TWIN.raw x
qemu-img create -q -f qcow2 -o compat=0.10 "$T/q.v2" 1M; cp "$T/q.v2" "$T/v.v2"
twin bitmap -f qcow2 --add TWIN.v2 x

# convert --bitmaps, and its refusals.
for k in q v; do
    tool=qemu-img; [ $k = v ] && tool=$VDK_IMG
    "$tool" convert --bitmaps -O qcow2 "$T/$k.qcow2" "$T/c$k.qcow2"
done
qemu-img compare -q "$T/cq.qcow2" "$T/cv.qcow2" || fail "convert --bitmaps data differs"
same_bitmaps "$T/cq.qcow2" "$T/cv.qcow2"
for b in b0 b1 b2 b3 huge off; do same_dirty "$T/cq.qcow2" "$T/cv.qcow2" $b "convert --bitmaps"; done
qemu_clean "$T/cv.qcow2"
twin convert --bitmaps -f raw -O qcow2 TWIN.raw "$T/x.qcow2"
twin convert --skip-broken-bitmaps -O qcow2 TWIN.qcow2 "$T/x.qcow2"
twin convert --bitmaps -O raw TWIN.qcow2 "$T/x.raw"
twin convert --bitmaps -O qcow2 -o compat=0.10 TWIN.qcow2 "$T/x.qcow2"
twin convert --bitmaps -O qcow2 TWIN.qcow2 TWIN.qcow2 "$T/x.qcow2"

# Bad input: damaged directories and tables fail the open with QEMU's
# words; nothing is written.
qemu-img create -q -f qcow2 "$T/d.qcow2" 64M
qemu-img bitmap --add "$T/d.qcow2" b0
retry_setup qemu-io -f qcow2 -c 'write 0 1M' "$T/d.qcow2" >/dev/null
dir_off() { # the bitmap directory offset from the header extension
    $PY - "$1" <<'PY'
import struct, sys
h = open(sys.argv[1], 'rb').read(65536)
o = struct.unpack('>I', h[100:104])[0]
while True:
    t, l = struct.unpack('>II', h[o:o + 8])
    if t == 0: sys.exit(1)
    if t == 0x23852875: print(struct.unpack('>Q', h[o + 24:o + 32])[0]); break
    o += 8 + ((l + 7) & ~7)
PY
}
doff=$(dir_off "$T/d.qcow2")
poke() { # FILE OFFSET HEXBYTES
    printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
bad() { # what, offset, bytes, regex
    cp "$T/d.qcow2" "$T/bad.qcow2"
    poke "$T/bad.qcow2" "$2" "$3"
    cp "$T/bad.qcow2" "$T/bad.orig"
    qemu-img info "$T/bad.qcow2" >/dev/null 2>&1 && fail "qemu-img accepts $1"
    expect_fail "$4" "$VDK_IMG" info "$T/bad.qcow2"
    expect_fail "$4" "$VDK_IMG" bitmap --add "$T/bad.qcow2" x
    same_file "$T/bad.qcow2" "$T/bad.orig"
}
bad "granularity 8" $((doff + 17)) 08 "Bitmap 'b0' doesn't satisfy the constraints"
bad "granularity 32" $((doff + 17)) 20 "Bitmap 'b0' doesn't satisfy the constraints"
bad "unknown type" $((doff + 16)) 02 "Bitmap 'b0' doesn't satisfy the constraints"
bad "reserved flag" $((doff + 12)) 00000008 "Bitmap 'b0' doesn't satisfy the constraints"
bad "table size 0" $((doff + 8)) 00000000 "Bitmap 'b0' doesn't satisfy the constraints"
bad "unaligned table" $((doff + 6)) 0200 "Bitmap 'b0' doesn't satisfy the constraints"
bad "name past the end" $((doff + 18)) ff00 "Broken bitmap directory"
bad "extra data" $((doff + 20)) 00000008 "Broken bitmap directory|extra data"
# A table entry with reserved bits: the bitmap cannot be loaded (read-write).
toff=$($PY -c "import struct,sys; f=open('$T/d.qcow2','rb'); f.seek($doff); print(struct.unpack('>Q', f.read(8))[0])")
cp "$T/d.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" $((toff + 7)) 02
expect_fail "Could not read bitmap 'b0'" "$VDK_IMG" bitmap --add "$T/bad.qcow2" x
qemu-img bitmap --add "$T/bad.qcow2" x 2>/dev/null && fail "qemu-img loads a bad table"
# check reports it as corruption (exit 2), as qemu's check counts a table
# it cannot load (qemu-img itself refuses to open such an image: exit 1).
rc=0; "$VDK_IMG" check "$T/bad.qcow2" >"$T/.c" 2>&1 || rc=$?
grep -q "bitmap table at .* is invalid" "$T/.c" || fail "check does not name the bad table"
[ "$rc" = 2 ] || { cat "$T/.c" >&2; fail "check exits $rc on a bad bitmap table, not 2"; }
grep -q "1 errors were found" "$T/.c" || fail "check does not count the bad table"
# A table entry pointing at the L1 table: the bitmap loads (qemu-img too),
# but a store must not write its data there.  The image is marked corrupt
# instead, with a message naming what the write would have overwritten.
l1off=$($PY -c "import struct; f=open('$T/d.qcow2','rb'); f.seek(40); print(struct.unpack('>Q', f.read(8))[0])")
cp "$T/d.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" "$toff" "$(printf '%016x' "$l1off")"
dd if="$T/bad.qcow2" of="$T/l1.orig" bs=512 skip=$((l1off / 512)) count=1 status=none
head -c 65536 /dev/urandom >"$T/s.raw"
truncate -s 64M "$T/s.raw"
rc=0; "$VDK_IMG" convert -n -f raw -O qcow2 "$T/s.raw" "$T/bad.qcow2" 2>"$T/.w" || rc=$?
[ "$rc" != 0 ] || { cat "$T/.w" >&2; fail "convert -n exits 0 although its bitmap store failed"; }
dd if="$T/bad.qcow2" of="$T/l1.now" bs=512 skip=$((l1off / 512)) count=1 status=none
same_file "$T/l1.now" "$T/l1.orig"
grep -q "would overwrite the active L1 table" "$T/.w" ||
    { cat "$T/.w" >&2; fail "a bitmap store over the L1 table was not refused"; }
grep -qE "AddressSanitizer|runtime error" "$T/.w" && { cat "$T/.w" >&2; fail "sanitizer report"; }
# The same entry when the bitmap is removed: freeing the table's clusters
# must not release the L1 table (its refcount dropping to 0 while L1 still
# uses it, so the next allocation would overwrite it).  The removal fails,
# the image is marked corrupt, and qemu-img check finds no cluster in use
# with refcount 0.
cp "$T/d.qcow2" "$T/bad.qcow2"
poke "$T/bad.qcow2" "$toff" "$(printf '%016x' "$l1off")"
rc=0; "$VDK_IMG" bitmap --remove "$T/bad.qcow2" b0 2>"$T/.w" || rc=$?
[ "$rc" != 0 ] || fail "bitmap --remove succeeded over a table naming the L1 table"
grep -q "would release the active L1 table" "$T/.w" ||
    { cat "$T/.w" >&2; fail "freeing the L1 table was not refused"; }
grep -qE "AddressSanitizer|runtime error" "$T/.w" && { cat "$T/.w" >&2; fail "sanitizer report"; }
qemu-img check "$T/bad.qcow2" >"$T/.c" 2>&1 || true
grep -q "refcount=0" "$T/.c" && { cat "$T/.c" >&2; fail "the L1 table was freed"; }
# Too many bitmaps claimed by the extension, and a directory past 64 MiB.
hdr_ext() { $PY - "$1" "$2" "$3" <<'PY'
import struct, sys
f = open(sys.argv[1], 'r+b'); h = f.read(65536)
o = struct.unpack('>I', h[100:104])[0]
while True:
    t, l = struct.unpack('>II', h[o:o + 8])
    if t == 0x23852875: break
    o += 8 + ((l + 7) & ~7)
f.seek(o + 8 + int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))
PY
}
for spec in "0 00000002:Less bitmaps found" "0 00010000:exceeding the QEMU supported maximum" \
            "0 00000000:zero bitmaps" "4 00000001:Reserved field is not zero" \
            "8 0000000004000008:exceeds the maximum supported size" \
            "16 0000000000000200:invalid dirty bitmap directory offset"; do
    cp "$T/d.qcow2" "$T/bad.qcow2"
    hdr_ext "$T/bad.qcow2" ${spec%%:*}
    qemu-img info "$T/bad.qcow2" >/dev/null 2>&1 && fail "qemu-img accepts ext ${spec%%:*}"
    expect_fail "${spec#*:}" "$VDK_IMG" info "$T/bad.qcow2"
done

# The autoclear rule: a writer without bitmap support cleared bit 0; the
# extension is ignored, then dropped by a read-write open; its clusters
# leak and check -r reclaims them.
cp "$T/d.qcow2" "$T/ac.qcow2"
poke "$T/ac.qcow2" 95 00
[ "$(binfo qemu-img "$T/ac.qcow2")" = "[]" ] || fail "qemu still lists bitmaps"
[ "$(binfo "$VDK_IMG" "$T/ac.qcow2" 2>/dev/null)" = "[]" ] || fail "vdk lists stale bitmaps"
"$VDK_IMG" info "$T/ac.qcow2" 2>&1 >/dev/null | grep -q "lacking bitmap support" ||
    fail "no warning about the stale extension"
retry_setup qemu-io -f qcow2 -c 'write 0 4k' "$T/ac.qcow2" >/dev/null   # QEMU drops it
cp "$T/d.qcow2" "$T/acv.qcow2"; poke "$T/acv.qcow2" 95 00
"$VDK_IMG" bitmap --add "$T/acv.qcow2" fresh 2>/dev/null
qemu-img check "$T/acv.qcow2" >"$T/.c" 2>&1 || true
grep -q "leaked clusters" "$T/.c" || fail "the dropped extension's clusters do not leak"
grep -q "ERROR" "$T/.c" && fail "dropping the extension corrupted the image"
"$VDK_IMG" check -r leaks "$T/acv.qcow2" >/dev/null
qemu_clean "$T/acv.qcow2"
[ "$(binfo qemu-img "$T/acv.qcow2")" = '[{"flags": ["auto"], "granularity": 65536, "name": "fresh"}]' ] ||
    fail "the new bitmap is not the only one: $(binfo qemu-img "$T/acv.qcow2")"
echo ok
