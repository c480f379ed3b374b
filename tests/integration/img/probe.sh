#!/bin/bash
# SPDX-License-Identifier: MIT
# Probing without -f against qemu-img's probe.  Every format qemu-img 7.2
# knows either opens with a vdk driver (and then as the format qemu-img
# names) or is refused with a one-line error naming it; damaged headers of
# known formats are refused; nothing of this is ever copied as raw.
# Images come from qemu-img where it can make them; bochs, cloop, dmg and
# the damaged ones are built here.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

drivers=" $("$VDK_IMG" __complete formats | tr '\n' ' ') "
has_driver() { [[ "$drivers" == *" $1 "* ]]; }

# What qemu-img's probe says: the format name, or "error".
qemu_probe() {
    local out
    out=$(qimg info "$1" 2>/dev/null) || { echo error; return; }
    sed -n 's/^file format: //p' <<<"$out"
}

# refused IMG WHAT: info, convert and vdk-nbd's library path all refuse
# IMG with "... is a WHAT image, which vdk cannot open yet"; convert
# creates no target.
refused() {
    local img=$1 what=$2
    local re="'[^']*$img' is a $what image, which vdk cannot open yet"
    expect_fail "$re" "$VDK_IMG" info "$img"
    expect_fail "$re" "$VDK_IMG" info --output=json "$img"
    rm -f out.raw
    expect_fail "$re" "$VDK_IMG" convert "$img" out.raw
    [ ! -e out.raw ] || fail "convert of $img left out.raw behind"
    expect_fail "$re" "$VDK_IMG" convert -O qcow2 "$img" out.raw
    [ ! -e out.raw ] || fail "convert -O qcow2 of $img left out.raw behind"
}

# known IMG FMT WHAT: qemu-img probes IMG as FMT (or, with "FMT!",
# refuses it after probing FMT); vdk opens it as FMT when it has that
# driver, else refuses it naming WHAT.
known() {
    local img=$1 fmt=$2 what=$3 q
    q=$(qemu_probe "$img")
    if [[ "$fmt" == *! ]]; then
        fmt=${fmt%!}
        [ "$q" = error ] || fail "qemu-img probes $img as '$q', expected a refusal"
    else
        [ "$q" = "$fmt" ] || fail "qemu-img probes $img as '$q', expected $fmt"
    fi
    if has_driver "$fmt"; then
        [ "$q" = error ] && return
        "$VDK_IMG" info "$img" >v.txt || fail "vdk-img info $img failed"
        grep -qx "file format: $fmt" v.txt || { cat v.txt; fail "$img not probed as $fmt"; }
        "$VDK_IMG" convert "$img" out.raw && qimg convert "$img" ref.raw ||
            fail "convert $img"
        same_file out.raw ref.raw
        rm -f out.raw ref.raw
    else
        refused "$img" "$what"
    fi
}

# Formats qemu-img creates.
qimg create -q -f vmdk sparse.vmdk 4M
qimg create -q -f vmdk -o subformat=monolithicFlat flat.vmdk 4M
qimg create -q -f vmdk -o subformat=twoGbMaxExtentSparse split.vmdk 4M
qimg create -q -f vmdk -o subformat=streamOptimized stream.vmdk 4M
qimg create -q -f vmdk -o compat6=on,adapter_type=lsilogic c6.vmdk 4M
qimg create -q -f vhdx d.vhdx 4M
qimg create -q -f vhdx -o subformat=fixed f.vhdx 4M
qimg create -q -f vdi d.vdi 4M
qimg create -q -f vdi -o static=on s.vdi 4M
qimg create -q -f qed d.qed 4M
qimg create -q -f parallels d.hdd 4M
qimg create -q -f qcow old.qcow 4M
qimg create -q -f qcow2 new.qcow2 4M
qimg create -q -f qcow2 -o compat=0.10 v2.qcow2 4M
qimg create -q -f vpc dyn.vhd 4M
for img in sparse.vmdk flat.vmdk split.vmdk stream.vmdk c6.vmdk; do known $img vmdk VMDK; done
known d.vhdx vhdx VHDX; known f.vhdx vhdx VHDX
known d.vdi vdi VDI; known s.vdi vdi VDI
known d.qed qed QED
known d.hdd parallels Parallels
known old.qcow qcow 'qcow \(version 1\)'
known new.qcow2 qcow2 qcow2; known v2.qcow2 qcow2 qcow2; known dyn.vhd vpc VHD

# The second Parallels magic (images with the extended header).
cp d.hdd ext.hdd
printf 'WithouFreSpacExt' | dd of=ext.hdd conv=notrunc status=none
known ext.hdd parallels Parallels
# A VMDK descriptor with comments, blank lines and CRLF line ends.
printf '# Disk DescriptorFile\r\n   \r\nversion=1\r\nCID=fffffffe\r\n' >crlf.vmdk
[ "$(qemu_probe crlf.vmdk)" != raw ] || fail "qemu-img probes crlf.vmdk as raw"
has_driver vmdk || refused crlf.vmdk VMDK
# VMDK 3 ("COWD", ESX sparse): a header qemu-img cannot make.
{ printf 'COWD\0\0\0\1'; head -c 2040 /dev/zero; } >cowd.vmdk
[ "$(qemu_probe cowd.vmdk)" != raw ] || fail "qemu-img probes cowd.vmdk as raw"
has_driver vmdk || refused cowd.vmdk VMDK

# bochs, cloop and dmg, which qemu-img reads but cannot create.
python3 - <<'EOF'
import struct
h = (b"Bochs Virtual HD Image".ljust(32, b"\0") + b"Redolog".ljust(16, b"\0") +
     b"Growing".ljust(16, b"\0") +
     struct.pack("<IIIIIIQ", 0x20000, 512, 1, 1, 4096, 0, 4096))
open("b.bochs", "wb").write(h.ljust(512, b"\0") + b"\xff" * 4 + bytes(508))
pre = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
c = pre.ljust(128, b"\0") + struct.pack(">IIQQ", 512, 1, 152, 162)
open("c.cloop", "wb").write(c.ljust(512, b"\0"))
koly = b"koly" + struct.pack(">II", 4, 512)
open("trailer.img", "wb").write(bytes(4096) + koly.ljust(512, b"\0"))
EOF
known b.bochs bochs Bochs
known c.cloop cloop cloop
# qemu-img probes dmg by the name alone, and refuses this minimal trailer.
cp trailer.img t.dmg
known t.dmg 'dmg!' DMG
# vdk also finds the trailer under another name (qemu-img: raw).
[ "$(qemu_probe trailer.img)" = raw ] || fail "qemu-img's dmg probe changed"
refused trailer.img DMG

# Damaged and truncated headers: refused, never raw, never a target file.
damaged() { # RE IMG [QEMU]: vdk refuses IMG with RE; QEMU=error: so does qemu-img
    local re=$1 img=$2
    expect_fail "$re" "$VDK_IMG" info "$img"
    rm -f out.raw
    expect_fail "$re" "$VDK_IMG" convert "$img" out.raw
    [ ! -e out.raw ] || fail "convert of damaged $img left out.raw behind"
    [ "${3:-}" != error ] || [ "$(qemu_probe "$img")" = error ] ||
        fail "qemu-img accepts damaged $img"
}
patch_be32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($3 >> 24 & 255)) \
    $(($3 >> 16 & 255)) $(($3 >> 8 & 255)) $(($3 & 255)))" |
    dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
cp new.qcow2 v4.qcow2; patch_be32 v4.qcow2 4 4
damaged 'Unsupported qcow2 version 4$' v4.qcow2 error
same_error "qcow2 version 4" info v4.qcow2
cp new.qcow2 v0.qcow2; patch_be32 v0.qcow2 4 0
damaged 'Unsupported qcow2 version 0$' v0.qcow2     # qemu-img: raw
{ printf 'QFI\xfb'; yes 'not a qcow2 header' | head -c 4000; } >garbage.qcow2
damaged 'Unsupported qcow2 version' garbage.qcow2 error
head -c 50 new.qcow2 >short.qcow2
damaged 'too short' short.qcow2 error
printf 'QFI\xfb\0\0' >tiny.qcow2
damaged 'too short' tiny.qcow2                      # qemu-img: raw
retry_setup --if "$LOAD_FLAKES" qimg create -q -f luks --object secret,id=s0,data=x -o key-secret=s0,iter-time=10 l.luks 1M
cp l.luks v3.luks; printf '\0\3' | dd of=v3.luks bs=1 seek=6 conv=notrunc status=none
damaged 'unsupported LUKS version 3' v3.luks        # qemu-img: raw
for f in sparse.vmdk d.vhdx d.vdi d.qed d.hdd old.qcow; do
    head -c 8 "$f" >"short-$f"
    head -c 600 "$f" >"cut-$f"
done
head -c 4 sparse.vmdk >tiny.vmdk
trunc_known() { # IMG FMT WHAT: with a driver, refused where qemu-img refuses
    has_driver "$2" || { refused "$1" "$3"; return; }
    if [ "$(qemu_probe "$1")" = error ]; then
        damaged . "$1"
    else
        "$VDK_IMG" info "$1" | grep -qx "file format: $2" || fail "$1 not opened as $2"
    fi
}
for img in short-sparse.vmdk cut-sparse.vmdk tiny.vmdk; do trunc_known $img vmdk VMDK; done
trunc_known short-d.vhdx vhdx VHDX; trunc_known cut-d.vhdx vhdx VHDX
trunc_known cut-d.vdi vdi VDI
trunc_known short-d.qed qed QED; trunc_known cut-d.qed qed QED
trunc_known cut-d.hdd parallels Parallels
trunc_known short-old.qcow qcow 'qcow \(version 1\)'

# Fixed VHD: the footer at the end makes it a VHD (qemu-img probes raw and
# shows the footer as the disk's last sector; with -f vpc both agree).
qimg create -q -f vpc -o subformat=fixed fixed.vhd 4M
"$VDK_IMG" info --output=json fixed.vhd >v.txt
qimg info -f vpc --output=json fixed.vhd >q.txt
cmp -s v.txt q.txt || { diff q.txt v.txt; fail "fixed VHD not probed as vpc"; }
"$VDK_IMG" convert fixed.vhd out.raw && qimg convert -f vpc fixed.vhd ref.raw
same_file out.raw ref.raw
rm -f out.raw ref.raw

# What is raw stays raw, as for qemu-img.
: >empty.img
printf 'QF' >two.img
printf 'version=4\n' >text.img
printf '# a comment\nkey=value\nversion=1\n' >late.img
yes 'plain bytes' | head -c 65536 >data.img
qimg create -q -f vpc -o subformat=fixed badsum.vhd 1M
printf 'X' | dd of=badsum.vhd bs=1 seek=$(( $(stat -c %s badsum.vhd) - 512 + 70 )) conv=notrunc status=none
for img in empty.img two.img text.img late.img data.img badsum.vhd; do
    [ "$(qemu_probe "$img")" = raw ] || fail "qemu-img does not probe $img as raw"
    same_output "info $img" info --output=json "$img"
done
echo ok
