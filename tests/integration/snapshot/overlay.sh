#!/bin/bash
# SPDX-License-Identifier: MIT
# The throwaway overlay (VDK_O_SNAPSHOT) over qcow2, a qcow2 chain, raw
# and vpc: writes through it read back, and the images are byte-identical
# afterwards (and still clean for qemu-img check).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/snapshot/common.sh"
OW=$1
cd "$T"
qemu-img create -q -f qcow2 base.qcow2 8M
qio -c 'write -P 1 0 6M' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qio -c 'write -P 2 1M 1M' top.qcow2
qemu-img snapshot -c keep base.qcow2
qemu-img create -q -f raw plain.raw 8M
qio -f raw -c 'write -P 3 0 8M' plain.raw
qemu-img create -q -f vpc -o subformat=dynamic disk.vhd 8M
qio -f vpc -c 'write -P 4 0 2M' disk.vhd
for img in base.qcow2:qcow2 top.qcow2:qcow2 plain.raw:raw disk.vhd:vpc; do
    f=${img%%:*} fmt=${img#*:}
    sha256sum "$f" base.qcow2 >sum.before
    "$OW" "$f" "$fmt" || fail "writes through the overlay on $f"
    sha256sum "$f" base.qcow2 >sum.after
    cmp -s sum.before sum.after || fail "$f changed under the throwaway overlay"
    [ "$fmt" != qcow2 ] || clean "$f" "overlay"
done
echo "throwaway overlay: all OK"
