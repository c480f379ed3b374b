#!/bin/bash
# SPDX-License-Identifier: MIT
# Damaged and hostile VHD images give one clear error line and no crash:
# images made by qemu-img (and vdk for differencing) are patched here.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"

HDR=512 # dynamic header offset in qemu's layout; BAT at 1536
hdr_fix() { fixsum "$1" $HDR 1024 36; }
fresh() { # NAME [SUBFORMAT]: a qemu-made 64 MiB image with one block written
    qemu-img create -q -f vpc -o subformat=${2:-dynamic} "$1" 64M
    retry_setup qemu-io -f vpc -c "write -P 0x11 0 4096" "$1" >/dev/null
}
bad() { # REGEX IMG: opening and reading must fail cleanly
    expect_fail "$1" "$VT" cat "$2"
}

fresh ok.vhd
"$VT" cat ok.vhd | cmp -n 4096 - <(head -c 4096 /dev/zero | tr '\0' '\021') ||
    fail "baseline image unreadable"

# Footer cookie and checksum, on both copies (one good copy is enough).
cp ok.vhd c.vhd; patch c.vhd 0 78; patch c.vhd $(( $(stat -c %s c.vhd) - 512 )) 78
bad "cookie 'conectix'" c.vhd
fresh f.vhd fixed; patch f.vhd $(( $(stat -c %s f.vhd) - 512 )) 78
bad "cookie 'conectix'" f.vhd
cp ok.vhd s.vhd; patch s.vhd 100 ff; patch s.vhd $(( $(stat -c %s s.vhd) - 512 + 100 )) ff
bad "footer checksum mismatch" s.vhd
# Only the end footer damaged: the copy at offset 0 is used, data intact.
cp ok.vhd e.vhd; patch e.vhd $(( $(stat -c %s e.vhd) - 512 + 100 )) ff
"$VT" cat e.vhd 2>e.err | cmp -n 4096 - <(head -c 4096 /dev/zero | tr '\0' '\021') ||
    fail "the footer copy at offset 0 was not used"
grep -q "using its copy" e.err || fail "no warning about the damaged footer"
"$VT" check e.vhd >/dev/null 2>&1 && fail "check misses the damaged footer"
"$VT" check e.vhd all >/dev/null 2>&1 || fail "check -r all did not repair"
"$VT" check e.vhd >/dev/null || fail "still damaged after repair"

# A BAT entry past the virtual size is a leak; check -r leaks clears it.
qemu-img create -q -f vpc tl.vhd 4M          # 3 BAT entries
retry_setup qemu-io -f vpc -c "write -P 0x11 0 4k" tl.vhd >/dev/null
patch tl.vhd $((HDR + 28)) 00000004; hdr_fix tl.vhd; patch tl.vhd $((1536 + 12)) 00000004
rc=0; "$VT" check tl.vhd > tl.out 2>&1 || rc=$?
[ "$rc" = 3 ] && grep -q "^leaks 1" tl.out || { cat tl.out; fail "BAT tail leak not found"; }
"$VT" check tl.vhd leaks | grep -q "^leaks-fixed 1" || fail "BAT tail leak not fixed"
"$VT" check tl.vhd >/dev/null || fail "BAT tail leak still there"
qemu-io -f vpc -c "read -P 0x11 0 4k" tl.vhd >/dev/null || fail "repair changed the data"

# Two BAT entries sharing one block: open tolerates it, check reports a
# corruption (exit 2 from vhd-tool, as from qemu-img check).
qemu-img create -q -f vpc ov.vhd 8M
retry_setup qemu-io -f vpc -c "write -P 0x11 0 4k" -c "write -P 0x12 2M 4k" ov.vhd >/dev/null
patch ov.vhd $((1536 + 4)) "$(xxd -s 1536 -l 4 -p ov.vhd)"
rc=0; "$VT" check ov.vhd > ov.out 2>&1 || rc=$?
[ "$rc" = 2 ] && grep -q "overlaps the block" ov.out || { cat ov.out; fail "overlap not found"; }

# Dynamic header.
cp ok.vhd h.vhd; patch h.vhd $((HDR + 40)) 01
bad "dynamic header checksum mismatch" h.vhd
cp ok.vhd h.vhd; patch h.vhd $HDR 78; hdr_fix h.vhd
bad "cxsparse" h.vhd
cp ok.vhd b.vhd; patch b.vhd $((HDR + 16)) 0000000010000000; hdr_fix b.vhd
bad "BAT at 0x10000000 .*beyond the end" b.vhd
cp ok.vhd z.vhd; patch z.vhd $((HDR + 32)) 00000000; hdr_fix z.vhd
bad "invalid VHD block size 0" z.vhd
cp ok.vhd z.vhd; patch z.vhd $((HDR + 32)) 00300000; hdr_fix z.vhd
bad "invalid VHD block size 3145728" z.vhd
cp ok.vhd n.vhd; patch n.vhd $((HDR + 28)) 00000002; hdr_fix n.vhd
bad "too few VHD BAT entries" n.vhd
cp ok.vhd t.vhd; patch t.vhd $((HDR + 28)) 7fffffff; hdr_fix t.vhd
bad "BAT at .*beyond the end" t.vhd

# Sizes: over 2040 GiB (current_size with a maximal geometry), and a
# fixed image whose footer claims more data than the file holds.
cp ok.vhd g.vhd; patch_footer g.vhd 48 0000020000000000; patch_footer g.vhd 56 ffff10ff
bad "exceeds the format's maximum of 2040 GiB" g.vhd
fresh fx.vhd fixed; patch_footer fx.vhd 48 0000000100000000; patch_footer fx.vhd 28 77696e20
bad "less than its virtual size" fx.vhd
cp ok.vhd y.vhd; patch_footer y.vhd 60 00000009
bad "unsupported VHD disk type 9" y.vhd

# BAT entries: beyond the end of the file, and onto the metadata.
cp ok.vhd x.vhd; patch x.vhd 1536 00ffffff
bad "BAT entry 0 points beyond the end" x.vhd
# A block over the metadata reads (as in qemu, with a warning) but is
# never written (tests/integration/img/check-like-qemu.sh compares).
cp ok.vhd x.vhd; patch x.vhd 1540 00000001
"$VT" cat x.vhd 2>x.err >/dev/null || { cat x.err >&2; fail "block over the metadata: read"; }
grep -q "BAT entry 1 .*overlaps the image metadata" x.err || fail "block over the metadata: no warning"
cp x.vhd x.before
expect_fail "Input/output error" "$VT" write x.vhd 2097152 512 0x55
cmp -s x.vhd x.before || fail "a write into the block over the metadata changed the file"
head -c 300 ok.vhd > short.vhd
bad "too small to be a VHD" short.vhd

# Differencing images: missing parent, parent UUID mismatch, parent loop.
"$VT" create p.vhd size=8M
"$VT" create c.vhd backing_file=p.vhd,backing_fmt=vpc
"$VT" open c.vhd || fail "good differencing image does not open"
mv p.vhd p.away
bad "cannot open the parent 'p.vhd'" c.vhd
"$VT" create p.vhd size=8M
bad "parent 'p.vhd' has UUID .* but the differencing VHD expects" c.vhd
# p.vhd becomes a child of c.vhd that carries the old parent's UUID:
# c -> p -> c.  The generic backing-chain loop check must stop it.
rm p.vhd; mv p.away p.vhd
"$VT" create p2.vhd backing_file=c.vhd
$PY - p.vhd p2.vhd <<'PYEOF'
import sys
old, new = sys.argv[1], sys.argv[2]
uuid = open(old, 'rb').read()[68:84]
with open(new, 'r+b') as f:
    for off in (0, f.seek(0, 2) - 512):
        f.seek(off + 68); f.write(uuid)
PYEOF
footer_fix p2.vhd
mv p2.vhd p.vhd
bad "loop" c.vhd

# Parent locators (vdk writes W2ku at index 0, W2ru at 1, MacX at 2; the
# table starts at header offset 576, 24 bytes an entry).  A parent name
# with a space exercises the file URL's escaping.
LOC=$((HDR + 576))
mkdir sub
"$VT" create "my parent.vhd" size=4M
"$VT" write "my parent.vhd" 0 4096 0x5e
"$VT" create sub/l.vhd "backing_file=../my parent.vhd"
"$VT" write sub/l.vhd 8192 512 0x5f
"$VT" cat sub/l.vhd > l.want
"$VT" info sub/l.vhd | grep -q '"parent":"../my parent.vhd"' || fail "W2ru not preferred"
patch sub/l.vhd $((LOC + 24)) 00000000; hdr_fix sub/l.vhd      # drop W2ru
"$VT" info sub/l.vhd | grep -q "\"parent\":\"$T/my parent.vhd\"" || fail "W2ku not used"
cmp <("$VT" cat sub/l.vhd) l.want || fail "reading through W2ku differs"
patch sub/l.vhd $LOC 00000000; hdr_fix sub/l.vhd               # drop W2ku
"$VT" info sub/l.vhd | grep -q "\"parent\":\"$T/my parent.vhd\"" || fail "MacX not used"
cmp <("$VT" cat sub/l.vhd) l.want || fail "reading through MacX differs"
# Moved elsewhere together with its parent: found beside the child.
mkdir moved; mv sub/l.vhd moved/; cp "my parent.vhd" moved/; mv "my parent.vhd" gone.vhd
cmp <("$VT" cat moved/l.vhd) l.want || fail "parent beside a moved child not found"
rm "moved/my parent.vhd"
bad "cannot open the parent '$T/my parent.vhd'" moved/l.vhd
echo "vhd bad images ok"
