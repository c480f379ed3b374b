#!/bin/bash
# SPDX-License-Identifier: MIT
# convert -l reads an internal snapshot: by name, by ID, and with
# snapshot.id= / snapshot.name=, byte-identical to qemu-img convert -l.
. "$VDK_SRC/tests/integration/lib.sh"
cd "$T"
qimg create -q -f qcow2 a.qcow2 16M
retry_setup qemu-io -c 'write -P 0x11 0 1M' -c 'write -P 0x33 8M 64k' a.qcow2 >/dev/null
qimg snapshot -c first a.qcow2
retry_setup qemu-io -c 'write -P 0x22 0 2M' a.qcow2 >/dev/null
"$VDK_IMG" snapshot -c second a.qcow2
retry_setup qemu-io -c 'write -P 0x44 4M 1M' a.qcow2 >/dev/null

for snap in first second; do
    qimg convert -l "$snap" -O raw a.qcow2 "q-$snap.raw"
    "$VDK_IMG" convert -l "$snap" -O raw a.qcow2 "v-$snap.raw"
    same_file "q-$snap.raw" "v-$snap.raw"
done
"$VDK_IMG" convert -l 1 -O raw a.qcow2 v-id.raw
same_file q-first.raw v-id.raw
"$VDK_IMG" convert -l snapshot.name=second -O raw a.qcow2 v-name.raw
same_file q-second.raw v-name.raw
"$VDK_IMG" convert -l snapshot.id=1,snapshot.name=first -f qcow2 -O qcow2 a.qcow2 v.qcow2
qimg compare -q q-first.raw v.qcow2 || fail "snapshot converted to qcow2 differs"
# The active layer is untouched by all of this.
qimg convert -O raw a.qcow2 q-active.raw
"$VDK_IMG" convert -O raw a.qcow2 v-active.raw
same_file q-active.raw v-active.raw
qimg check -q a.qcow2 || fail "qemu-img check after convert -l"

expect_fail "Can't find snapshot 'nosuch'" "$VDK_IMG" convert -l nosuch -O raw a.qcow2 x.raw
expect_fail "Invalid snapshot parameter" "$VDK_IMG" convert -l snapshot.bogus=1 -O raw a.qcow2 x.raw
qimg create -q -f raw r.raw 1M
expect_fail "snapshot" "$VDK_IMG" convert -l first -f raw -O raw r.raw x.raw
expect_fail "concatenating" "$VDK_IMG" convert -l first -O raw a.qcow2 a.qcow2 x.raw
echo "convert -l: ok"
