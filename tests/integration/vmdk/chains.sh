#!/bin/bash
# SPDX-License-Identifier: MIT
# VMDK parent chains: create -b (parentCID, parentFileNameHint as
# qemu-img writes them), copy-on-write reads through the parent, commit
# (top emptied afterwards; qemu-img keeps it), rebase (qemu-img cannot
# rebase a VMDK at all: vdk rewrites parentCID and the hint), measure,
# map, convert to qcow2 and compare.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

qemu-img create -q -f vmdk base.vmdk 16M
qemu-io -f vmdk -c "write -P 0x11 0 4M" -c "write -P 0x22 8M 1M" base.vmdk >/dev/null
bcid=$(desc base.vmdk >/dev/null; dd if=base.vmdk bs=512 skip=1 count=20 status=none |
       tr -d '\0' | sed -n 's/^CID=//p')

"$VDK_IMG" create -q -f vmdk -b base.vmdk -F vmdk top.vmdk
qemu-img create -q -f vmdk -b base.vmdk -F vmdk qtop.vmdk
diff <(desc qtop.vmdk | sed s/qtop/NAME/) <(desc top.vmdk | sed s/top/NAME/) >&2 ||
    fail "child descriptor differs from qemu-img's"
dd if=top.vmdk bs=512 skip=1 count=20 status=none | tr -d '\0' | grep -qx "parentCID=$bcid" ||
    fail "parentCID is not the parent's CID $bcid"
"$VDK_IMG" info top.vmdk | grep -q '^backing file: base.vmdk' || fail "info: backing file"

# partial writes copy the rest of the grain from the parent
"$VT" write top.vmdk 1000 3000 0x33
qemu-io -f vmdk -c "write -P 0x33 1000 3000" qtop.vmdk >/dev/null
qemu-img compare -q top.vmdk qtop.vmdk || fail "copy-on-write differs from qemu's"
qemu-img check -q top.vmdk || fail "qemu-img check top"
diff <(qemu-img map --output=json qtop.vmdk) <("$VDK_IMG" map --output=json top.vmdk) >&2 ||
    fail "chain maps differ"
"$VDK_IMG" convert -O qcow2 top.vmdk top.qcow2
qemu-img compare -q top.qcow2 qtop.vmdk || fail "convert of a chain to qcow2 differs"

# commit: the parent takes the data, the top is emptied
qemu-img convert -O raw top.vmdk want.raw
"$VDK_IMG" commit -q top.vmdk
qemu-img compare -q -F raw base.vmdk want.raw || fail "committed parent differs"
qemu-img compare -q -F raw top.vmdk want.raw || fail "chain after commit differs"
[ "$("$VDK_IMG" map --output=json top.vmdk | grep -c '"depth": 0')" = 0 ] ||
    fail "top still allocates grains after commit"
qemu-img check -q top.vmdk && qemu-img check -q base.vmdk || fail "check after commit"

# rebase: safe onto another parent, then unsafe, then away from any parent
qemu-img create -q -f vmdk other.vmdk 16M
qemu-io -f vmdk -c "write -P 0x44 0 2M" other.vmdk >/dev/null
"$VT" write top.vmdk 12582912 65536 0x55
qemu-img convert -O raw top.vmdk want.raw
"$VDK_IMG" rebase -b other.vmdk -F vmdk top.vmdk
ocid=$(dd if=other.vmdk bs=512 skip=1 count=20 status=none | tr -d '\0' | sed -n 's/^CID=//p')
dd if=top.vmdk bs=512 skip=1 count=20 status=none | tr -d '\0' | grep -qx "parentCID=$ocid" ||
    fail "rebase did not record the new parent's CID"
qemu-img info top.vmdk | grep -q '^backing file: other.vmdk' || fail "qemu sees no new parent"
qemu-img compare -q -F raw top.vmdk want.raw || fail "safe rebase changed the guest data"
"$VDK_IMG" rebase -b "" top.vmdk
qemu-img info top.vmdk | grep -q '^backing file' && fail "parent still recorded"
qemu-img compare -q -F raw top.vmdk want.raw || fail "rebase -b '' changed the guest data"
qemu-img check -q top.vmdk || fail "check after rebase"

# standalone descriptors (twoGbMaxExtentSparse) take a parent too
"$VDK_IMG" create -q -f vmdk -o subformat=twoGbMaxExtentSparse -b base.vmdk -F vmdk split.vmdk
grep -q '^parentFileNameHint="base.vmdk"' split.vmdk || fail "split child: no hint"
qemu-img compare -q split.vmdk base.vmdk || fail "split child reads differently"
"$VDK_IMG" rebase -u -b other.vmdk -F vmdk split.vmdk
qemu-img compare -q split.vmdk other.vmdk || fail "split child after rebase -u"

# measure: a VMDK target (qemu-img cannot measure VMDK)
"$VDK_IMG" measure -O vmdk want.raw | grep -q '^required size: ' || fail "measure"
"$VDK_IMG" convert -O vmdk want.raw m.vmdk
req=$("$VDK_IMG" measure --output=json -O vmdk want.raw | sed -n 's/.*"required": \([0-9]*\).*/\1/p')
[ "$(stat -c %s m.vmdk)" -le "$req" ] || fail "measure: $req < $(stat -c %s m.vmdk)"
echo ok
