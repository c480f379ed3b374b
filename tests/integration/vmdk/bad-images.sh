#!/bin/bash
# SPDX-License-Identifier: MIT
# Damaged and hostile VMDKs: each gets a clear one-line error and a
# non-zero exit from vdk-img (info, convert, check), never a crash, a hang
# or a write to the image.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

# bad IMG REGEX [ARGS...]: vdk-img ARGS (IMG stands for the image;
# default: info and convert) on IMG
# fails with REGEX, within a bound of time, and leaves IMG unchanged.
bad() {
    local img=$1 re=$2; shift 2
    local before after
    before=$(cat "$img"* 2>/dev/null | sha256sum)
    if [ $# -eq 0 ]; then
        expect_fail "$re" timeout 60 "$VDK_IMG" info -f vmdk "$img"
        expect_fail "$re" timeout 60 "$VDK_IMG" convert -f vmdk -O raw "$img" out.raw
    else
        local a=() x
        for x in "$@"; do [ "$x" = IMG ] && a+=("$img") || a+=("$x"); done
        expect_fail "$re" timeout 60 "$VDK_IMG" "${a[@]}"
    fi
    after=$(cat "$img"* 2>/dev/null | sha256sum)
    [ "$before" = "$after" ] || fail "$img was written to"
    rm -f out.raw
}

fresh() { rm -f g.vmdk; qemu-img create -q -f vmdk "$@" g.vmdk 64M; }
le64() { $PY -c 'import struct,sys; print(struct.pack("<Q", int(sys.argv[1], 0)).hex())' "$1"; }
gdoff() { $PY -c 'import struct; d=open("g.vmdk","rb").read(512); print(struct.unpack("<Q", d[56:64])[0]*512)'; }
le32() { $PY -c 'import struct,sys; print(struct.pack("<I", int(sys.argv[1], 0)).hex())' "$1"; }

# truncated header, bad version, non-power-of-two grain, absurd capacity
fresh; head -c 100 g.vmdk > t.vmdk; bad t.vmdk 'too short for a VMDK sparse header'
fresh; patch g.vmdk 4 09000000; bad g.vmdk 'unsupported VMDK sparse extent version 9'
fresh; patch g.vmdk 20 "$(le64 100)"; bad g.vmdk 'invalid VMDK grain size'
fresh; patch g.vmdk 44 "$(le32 100000)"; bad g.vmdk 'invalid VMDK grain table size'
fresh; patch g.vmdk 12 "$(le64 0x4000000000000000)"; bad g.vmdk 'capacity of [0-9]+ sectors exceeds'
fresh; patch g.vmdk 73 0a0a0a0a; bad g.vmdk 'newline check bytes are damaged'
# bad magic: no header, no descriptor
fresh; patch g.vmdk 0 4b444d58; bad g.vmdk 'descriptor'
# grain directory, grain table and grain past the end of the file
fresh; patch g.vmdk 56 "$(le64 0x7fffffff)"; bad g.vmdk 'grain directory at sector [0-9]+ lies past'
fresh; patch g.vmdk "$(gdoff)" "$(le32 0x7ffffff0)"; bad g.vmdk 'grain directory of .* points past'
fresh; qemu-io -f vmdk -c 'write -P 1 0 64k' g.vmdk >/dev/null
gt=$($PY -c 'import struct,sys; d=open("g.vmdk","rb").read(); o=int(sys.argv[1]); print(struct.unpack("<I", d[o:o+4])[0]*512)' "$(gdoff)")
patch g.vmdk "$gt" "$(le32 0x7fffff00)"
bad g.vmdk 'Input/output error' convert -f vmdk -O raw IMG out.raw
bad g.vmdk 'Input/output error' map -f vmdk IMG
# check stops at it as qemu-img does: exit 1, "Check failed: Invalid argument"
rc=0; "$VDK_IMG" check -f vmdk g.vmdk >check.out 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q 'points after EOF' check.out && grep -q 'Check failed: Invalid argument' check.out ||
    { cat check.out; fail "check of a grain past EOF (rc $rc)"; }
# a descriptor area past the end of the file
fresh; patch g.vmdk 28 "$(le64 0x100000)"; bad g.vmdk 'embedded descriptor .* out of bounds'

# descriptors: overflowing sizes, too large, too many or too long lines
desc_file() { printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="%s"\n%s\n' "$@" > d.vmdk; }
truncate -s 1M flat.img
desc_file monolithicFlat 'RW 18446744073709551615 FLAT "flat.img" 0'; bad d.vmdk 'invalid extent size'
desc_file twoGbMaxExtentFlat "RW 137438953472 FLAT \"flat.img\" 0
RW 137438953472 FLAT \"flat.img\" 0"; bad d.vmdk 'add up to more than'
desc_file monolithicFlat 'RW 4096 FLAT "flat.img" 0'; bad d.vmdk "holds 1048576 bytes, less than"
desc_file monolithicFlat 'RW 2048 FLAT "flat.img" 18446744073709551615'; bad d.vmdk 'bad extent offset'
desc_file monolithicFlat 'RW 2048 FROB "flat.img" 0'; bad d.vmdk 'unsupported extent type'
desc_file someOtherType 'RW 2048 FLAT "flat.img" 0'; bad d.vmdk "unsupported VMDK image type 'someOtherType'"
{ desc_file monolithicFlat 'RW 2048 FLAT "flat.img" 0'; head -c 10M /dev/zero | tr '\0' '#'; } > big.vmdk
cat d.vmdk big.vmdk > d2.vmdk; mv d2.vmdk d.vmdk; bad d.vmdk 'larger than 1048576 bytes'
desc_file monolithicFlat "RW 2048 FLAT \"$(head -c 5000 /dev/zero | tr '\0' a)\" 0"; bad d.vmdk 'longer than 4096 bytes'
$PY -c 'print("# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType=\"twoGbMaxExtentFlat\"\n" + "RW 1 ZERO\n" * 5000)' > d.vmdk
bad d.vmdk 'more than 4096 extents'

# extent loops and repeats, missing and non-regular extents
desc_file monolithicFlat 'RW 1 FLAT "d.vmdk" 0'; bad d.vmdk "extent file '.*d.vmdk' is the descriptor itself"
desc_file twoGbMaxExtentFlat 'RW 2048 FLAT "flat.img" 0
RW 2048 FLAT "./flat.img" 0'; bad d.vmdk "extent file '.*flat.img' is named twice"
desc_file monolithicFlat 'RW 2048 FLAT "missing.img" 0'; bad d.vmdk "cannot open extent file '.*missing.img'"
mkdir -p sub; desc_file monolithicFlat 'RW 2048 FLAT "sub" 0'; bad d.vmdk "extent file '.*sub' is not a regular file"
# an extent that is itself a descriptor naming the first: no loop, no hang
desc_file twoGbMaxExtentSparse 'RW 2048 SPARSE "e2.vmdk"'
printf '# Disk DescriptorFile\nversion=1\ncreateType="twoGbMaxExtentSparse"\nRW 2048 SPARSE "d.vmdk"\n' > e2.vmdk
bad d.vmdk 'too short for a VMDK sparse header|not a VMDK sparse extent'

# hostile extent paths: a probed image never leaves its folder
mkdir -p dir
desc_file monolithicFlat "RW 2048 FLAT \"$T/flat.img\" 0"; mv d.vmdk dir/
expect_fail "lies outside its folder; give the image format with -f vmdk" \
    "$VDK_IMG" info dir/d.vmdk
desc_file monolithicFlat 'RW 2048 FLAT "../flat.img" 0'; mv d.vmdk dir/
expect_fail "lies outside its folder" "$VDK_IMG" convert -O raw dir/d.vmdk out.raw
expect_fail "lies outside its folder" "$VDK_IMG" info dir/d.vmdk
"$VDK_IMG" info -f vmdk dir/d.vmdk >/dev/null || fail "-f vmdk does not allow ../"
[ ! -e out.raw ] || fail "convert of a refused image created its target"

# streamOptimized: a grain marker whose length runs past the end, a lost
# footer, a marker for another grain
"$VDK_IMG" create -q -f vmdk -o size=4M s.raw.tmp 2>/dev/null || true
head -c 4M /dev/urandom > s.raw
"$VDK_IMG" convert -m 1 -O vmdk -o subformat=streamOptimized s.raw s.vmdk
cp s.vmdk m.vmdk; patch m.vmdk $(( 128 * 512 + 8 )) ffffff7f
bad m.vmdk 'Input/output error' convert -f vmdk -O raw IMG out.raw
rc=0; "$VDK_IMG" check -f vmdk m.vmdk >check.out 2>&1 || rc=$?
# a warning; the exit code stays qemu-img's (0: it does not decode grains)
[ "$rc" = 0 ] && grep -q 'warning: compressed grain .* is damaged' check.out || { cat check.out; fail "check of a bad marker (rc $rc)"; }
cp s.vmdk m.vmdk; patch m.vmdk $(( 128 * 512 )) "$(le64 640)"
bad m.vmdk 'Input/output error' convert -f vmdk -O raw IMG out.raw
head -c -512 s.vmdk > m.vmdk; bad m.vmdk 'no valid footer'
head -c 1000 s.vmdk > m.vmdk; bad m.vmdk 'no footer|too short|out of bounds'
# An empty stream whose header and footer put the first grain 512 MiB past
# the end of the file (found by the fuzz campaign: a write went there, a
# hole that size, or 512 MiB of memory in a memory node): readable, but a
# writable open is refused and the file stays as it was.
"$VDK_IMG" create -q -f vmdk -o subformat=streamOptimized e.vmdk 1M
sz=$(stat -c %s e.vmdk)
patch e.vmdk 64 "$(le64 0x100000)"
patch e.vmdk $((sz - 1024 + 64)) "$(le64 0x100000)"
"$VDK_IMG" info -f vmdk e.vmdk >/dev/null || fail "read-only open of a stream with a far overhead"
head -c 64k /dev/urandom > e.raw
bad e.vmdk 'grains start at byte 536870912, past the end of the file' \
    convert -n -f raw -O vmdk e.raw IMG
[ "$(stat -c %s e.vmdk)" = "$sz" ] || fail "the refused stream changed size"

# check warns about a redundant grain table that differs from the primary
# one (exit 0, as qemu-img check, which does not look at the redundant
# tables) and -r all rewrites it
fresh; qemu-io -f vmdk -c 'write -P 7 0 128k' g.vmdk >/dev/null
rgt=$($PY -c 'import struct; d=open("g.vmdk","rb").read(); r=struct.unpack("<Q", d[48:56])[0]*512; print(struct.unpack("<I", d[r:r+4])[0]*512)')
patch g.vmdk "$rgt" 00000000
rc=0; "$VDK_IMG" check g.vmdk >check.out 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q 'warning: redundant grain table 0' check.out || { cat check.out; fail "damaged redundant GT not found (rc $rc)"; }
"$VDK_IMG" check -r all g.vmdk >check.out 2>&1 || { cat check.out; fail "check -r all"; }
"$VDK_IMG" check -q g.vmdk || fail "check after repair"
qemu-img check -q g.vmdk || fail "qemu-img check after repair"
qemu-io -f vmdk -c 'read -P 7 0 128k' g.vmdk | grep -q 'read 131072' || fail "data after repair"
echo ok
