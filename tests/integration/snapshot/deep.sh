#!/bin/bash
# SPDX-License-Identifier: MIT
# A chain of 100 qcow2 overlays over a raw base, each layer writing its
# own cluster: vdk reads the top, maps it and commits inside it the same
# as qemu-img.  (The cost is measured in bench/, never asserted here.)
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/snapshot/common.sh"
cd "$T"
DEPTH=100
qemu-img create -q -f raw l0.img 8M
qio -f raw -c 'write -P 1 0 8M' l0.img
fmt=raw
for i in $(seq 1 $DEPTH); do
    qemu-img create -q -f qcow2 -b "l$((i - 1)).img" -F $fmt "l$i.img"
    fmt=qcow2
    qio -c "write -P $((i % 200 + 2)) $((i * 64))k 64k" "l$i.img"
done
top=l$DEPTH.img
qemu-img convert -O raw "$top" q.raw
"$VDK_IMG" convert -O raw "$top" v.raw || fail "convert of a $DEPTH-deep chain"
same_file v.raw q.raw
"$VDK_IMG" compare -q "$top" q.raw || fail "compare of a $DEPTH-deep chain"
"$VDK_IMG" info --backing-chain --output=json "$top" >v.json
qemu-img info --backing-chain --output=json "$top" >q.json
diff -q q.json v.json >/dev/null || fail "info --backing-chain of a $DEPTH-deep chain differs"
"$VDK_IMG" map --output=json "$top" >v.map
qemu-img map --output=json "$top" >q.map
diff -u q.map v.map >&2 || fail "map of a $DEPTH-deep chain differs"
# Commit the top half into layer 50 (vdk and qemu-img on copies).
mkdir q v
cp l*.img q/ && cp l*.img v/
(cd q && qemu-img commit -q -b l50.img "$top")
(cd v && "$VDK_IMG" commit -q -b l50.img "$top") || fail "commit into the middle"
qemu-img compare -q v/l50.img q/l50.img || fail "commit into l50 differs from qemu-img's"
clean v/l50.img "commit into the middle"
clean "v/$top" "commit into the middle"
qemu-img convert -O raw "v/$top" v.raw
same_file v.raw q.raw
echo "deep chain: all OK"
