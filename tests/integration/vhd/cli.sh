#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img on VHD images: commit of a differencing image into its parent
# (the parent then holds the child's view, qemu-img agrees, and the child
# is emptied so it reads like its parent).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vhd/vhd-lib.sh"
cd "$T"

qemu-img create -q -f vpc p.vhd 8M
qemu-io -f vpc -c "write -P 0x11 0 1M" -c "write -P 0x12 5M 64k" p.vhd >/dev/null
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
echo "vhd cli ok"
