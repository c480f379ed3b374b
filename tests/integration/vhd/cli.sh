#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img on VHD images: create (-o subformat, force_size, azure_align,
# -b for differencing), convert -O vpc both subformats, info fields,
# check and check -r, map, measure, commit of a differencing image into
# its parent (the parent then holds the child's view, qemu-img agrees, and
# the child is emptied so it reads like its parent), rebase and commit -b.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"
jq_get() { # FILE KEY.PATH: a field of vdk-img's JSON, through python
    $PY -c "import json,sys; v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split('.'): v=v[k]
print(str(v).lower() if isinstance(v,bool) else v)" "$1" "$2"
}

# create: the same virtual size as qemu-img for the same request
for o in subformat=dynamic subformat=fixed force_size=on subformat=fixed,force_size=on; do
    for size in 64M 100000000; do
        "$VDK_IMG" create -q -f vpc -o "$o" v.vhd "$size"
        qemu-img create -q -f vpc -o "$o" q.vhd "$size"
        [ "$(vsize v.vhd)" = "$(vsize q.vhd)" ] || fail "create -o $o $size: size differs"
        qemu-img compare -q -f vpc -F vpc v.vhd q.vhd || fail "create -o $o: content"
    done
done
"$VDK_IMG" create -q -f vpc -o subformat=fixed,azure_align=on az.vhd 30000000
[ "$(vsize az.vhd)" = 30408704 ] || fail "azure_align: $(vsize az.vhd)"

# convert -O vpc: qemu reads the result byte-exact; and back to raw
head -c 3M /dev/urandom > s.raw
truncate -s 9M s.raw
dd if=/dev/urandom of=s.raw bs=512 seek=14000 count=9 conv=notrunc status=none
for sub in dynamic fixed; do
    "$VDK_IMG" convert -O vpc -o subformat=$sub s.raw $sub.vhd
    qemu-img compare -q -f vpc -F raw $sub.vhd s.raw || fail "convert -O vpc $sub differs"
    "$VDK_IMG" convert -f vpc -O raw $sub.vhd back.raw
    qemu-img convert -f vpc -O raw $sub.vhd qback.raw
    same_file back.raw qback.raw
done
qemu-img convert -f raw -O vpc s.raw q.vhd
"$VDK_IMG" convert -f vpc -O raw q.vhd back.raw
qemu-img convert -f vpc -O raw q.vhd qback.raw
same_file back.raw qback.raw

# measure: what convert then uses
"$VDK_IMG" measure --output=json -O vpc s.raw > m.json
[ "$(jq_get m.json required)" = "$(stat -c %s dynamic.vhd)" ] ||
    fail "measure $(jq_get m.json required), convert used $(stat -c %s dynamic.vhd)"

# info fields
"$VDK_IMG" info --output=json dynamic.vhd > i.json
[ "$(jq_get i.json format)" = vpc ] || fail "info: format"
[ "$(jq_get i.json virtual-size)" = "$(vsize dynamic.vhd)" ] || fail "info: virtual-size"
[ "$(jq_get i.json cluster-size)" = 2097152 ] || fail "info: cluster-size"
[ "$(jq_get i.json dirty-flag)" = false ] || fail "info: dirty-flag"
# as qemu-img 7.2: no format-specific block for fixed and dynamic images
! grep -q format-specific i.json || fail "info: format-specific block for a dynamic VHD"
"$VDK_IMG" create -q -f vpc -b dynamic.vhd -F vpc child.vhd
"$VDK_IMG" info --output=json child.vhd > i.json
[ "$(jq_get i.json backing-filename)" = dynamic.vhd ] || fail "info: backing-filename"
[ "$(jq_get i.json format-specific.data.subformat)" = differencing ] || fail "info: diff"
[ "$(jq_get i.json format-specific.data.creator-app)" = qemu ] || fail "info: creator"
puuid=$(od -An -tx1 -j68 -N16 dynamic.vhd | tr -d ' \n' |
        sed -E 's/(.{8})(.{4})(.{4})(.{4})/\1-\2-\3-\4-/')
[ "$(jq_get i.json format-specific.data.parent-uuid)" = "$puuid" ] || fail "info: parent UUID"
cmp <("$VT" cat child.vhd) <("$VT" cat dynamic.vhd) || fail "differencing child reads unlike its parent"

# map: data where the raw file has data, nothing elsewhere
"$VDK_IMG" map --output=json dynamic.vhd > map.json
$PY - map.json <<'PYEOF' || fail "map of the dynamic image"
import json, sys
m = json.load(open(sys.argv[1]))
data = [(e['start'], e['length']) for e in m if e['data'] and not e['zero']]
assert data[0][0] == 0 and any(s <= 14000 * 512 < s + l for s, l in data), data
assert not any(s <= 5 << 20 < s + l for s, l in data), data
PYEOF

# check: clean image, damaged end footer (exit 2), repaired with -r all
"$VDK_IMG" check -q dynamic.vhd || fail "check of a clean image"
patch dynamic.vhd $(( $(stat -c %s dynamic.vhd) - 512 + 100 )) ff
rc=0; "$VDK_IMG" check dynamic.vhd >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "check of a damaged footer exits $rc, not 2"
"$VDK_IMG" check -q -r all dynamic.vhd || fail "check -r all"
"$VDK_IMG" check -q dynamic.vhd || fail "still damaged after check -r all"
qemu-img compare -q -f vpc -F raw dynamic.vhd s.raw || fail "repair changed the data"

qemu-img create -q -f vpc p.vhd 8M
retry_setup qemu-io -f vpc -c "write -P 0x11 0 1M" -c "write -P 0x12 5M 64k" p.vhd >/dev/null
"$VT" create c.vhd backing_file=p.vhd,backing_fmt=vpc
"$VT" write c.vhd 4096 4096 0x22
"$VT" write c.vhd 6291456 8192 0x33
"$VT" cat c.vhd > want.raw
before=$(stat -c %s c.vhd)

"$VDK_IMG" commit -q c.vhd || fail "vdk-img commit failed"
qemu-img compare -q -f vpc -F raw p.vhd want.raw || fail "parent lacks the committed data"
cmp <("$VT" cat c.vhd) want.raw || fail "child reads differently after commit"
[ "$(stat -c %s c.vhd)" -lt "$before" ] || fail "child was not emptied"
"$VT" map c.vhd | grep -q "depth=0" && fail "child still allocates blocks"
"$VT" check c.vhd >/dev/null || fail "child fails check after commit"

# commit -d keeps the child's blocks
"$VT" write c.vhd 0 512 0x44
"$VT" cat c.vhd > want2.raw
"$VDK_IMG" commit -q -d c.vhd || fail "vdk-img commit -d failed"
qemu-img compare -q -f vpc -F raw p.vhd want2.raw || fail "commit -d: parent differs"
"$VT" map c.vhd | grep -q "depth=0" || fail "commit -d emptied the child"

# rebase: -u onto a copy of the parent, then a safe rebase onto the
# grandparent (data copied up); the image reads the same all along, and
# libvhdi agrees with the new parent attached.
qemu-img create -q -f vpc ra.vhd 8M
retry_setup qemu-io -f vpc -c "write -P 0x11 0 3M" ra.vhd >/dev/null
"$VT" create rb.vhd backing_file=ra.vhd
"$VT" write rb.vhd 1048576 1048576 0x22
"$VT" create rc.vhd backing_file=rb.vhd
"$VT" write rc.vhd 4194304 4096 0x33
"$VT" cat rc.vhd > rc.want
cp rb.vhd rb2.vhd
"$VDK_IMG" rebase -u -b rb2.vhd -F vpc rc.vhd || fail "rebase -u"
"$VT" info rc.vhd | grep -q "^backing rb2.vhd vpc" || fail "rebase -u: parent not recorded"
cmp <("$VT" cat rc.vhd) rc.want || fail "rebase -u changed the content"
"$VDK_IMG" rebase -b ra.vhd -F vpc rc.vhd || fail "rebase"
"$VT" info rc.vhd | grep -q "^backing ra.vhd vpc" || fail "rebase: parent not recorded"
cmp <("$VT" cat rc.vhd) rc.want || fail "rebase changed the content"
"$VT" check rc.vhd >/dev/null || fail "check after rebase"
$PY - rc.vhd ra.vhd rc.lib <<'PYEOF'
import sys, pyvhdi
c = pyvhdi.file(); c.open(sys.argv[1]); p = pyvhdi.file(); p.open(sys.argv[2])
c.set_parent(p)
open(sys.argv[3], 'wb').write(c.read_buffer_at_offset(c.media_size, 0))
PYEOF
cmp rc.lib rc.want || fail "libvhdi reads the rebased image differently"
expect_fail "cannot drop its parent" "$VDK_IMG" rebase -u -b "" rc.vhd

# commit -b through an intermediate image: the top then sits on the base.
"$VT" create rb.vhd backing_file=ra.vhd
"$VT" write rb.vhd 0 4096 0x44
"$VT" create rc.vhd backing_file=rb.vhd
"$VT" write rc.vhd 2097152 4096 0x55
"$VT" cat rc.vhd > rc.want
"$VDK_IMG" commit -q -b ra.vhd rc.vhd || fail "commit -b"
"$VT" info rc.vhd | grep -q "^backing ra.vhd vpc" || fail "commit -b: top not moved onto base"
cmp <("$VT" cat rc.vhd) rc.want || fail "commit -b: top reads differently"
cmp <("$VT" cat ra.vhd) rc.want || fail "commit -b: base lacks the data"
echo "vhd cli ok"
