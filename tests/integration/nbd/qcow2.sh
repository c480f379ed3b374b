#!/bin/bash
# SPDX-License-Identifier: MIT
# qcow2 exports: a qcow2 image (with a backing file) served by vdk-nbd reads
# and maps as qemu-nbd serves it, takes writes that qemu-img check accepts,
# and with -s leaves the image untouched.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
cd "$T"
qemu-img create -q -f raw base.raw 8M
retry_setup qemu-io -f raw -c 'write -P 0x5a 1M 1M' base.raw >/dev/null
qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2
retry_setup qemu-io -c 'write -P 0xa5 4M 64k' -c 'write -z 6M 1M' top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 want.raw

# Read-only export: the guest data and the allocation picture.
start_nbd "$T/s" -t -r -f qcow2 -A top.qcow2
nbdcopy "$(uri "$T/s")" got.raw
same_file want.raw got.raw
nbdinfo --map "$(uri "$T/s")" > vdk.map
nbdinfo --map=qemu:allocation-depth "$(uri "$T/s")" > vdk.depth
stop_nbd
qemu-nbd -t -r -f qcow2 -A -k "$T/q" top.qcow2 &
qpid=$!
for _ in $(seq 100); do [ -S "$T/q" ] && break; sleep 0.05; done
nbdinfo --map "$(uri "$T/q")" > qemu.map
nbdinfo --map=qemu:allocation-depth "$(uri "$T/q")" > qemu.depth
kill "$qpid"; wait "$qpid" 2>/dev/null || true
diff -u qemu.map vdk.map || fail "base:allocation differs from qemu-nbd's"
diff -u qemu.depth vdk.depth || fail "qemu:allocation-depth differs from qemu-nbd's"

# Writable export: writes land in the qcow2 overlay, never in the base.
cp base.raw base.orig
start_nbd "$T/s" -t -f qcow2 top.qcow2
qemu-io -f raw -c 'write -P 0x33 2M 300k' -c 'write -z 5M 64k' "$(uri "$T/s")" >/dev/null
stop_nbd
qemu-img check -q top.qcow2 || fail "qemu-img check after writes through vdk-nbd"
same_file base.raw base.orig
qemu-io -c 'read -P 0x33 2M 300k' -c 'read -P 0 5M 64k' top.qcow2 | grep -q "read 65536" ||
    fail "writes through vdk-nbd did not land"

# -s: the qcow2 file does not change.
cp top.qcow2 top.orig
start_nbd "$T/s" -t -s -f qcow2 top.qcow2
qemu-io -f raw -c 'write -P 0x77 0 1M' "$(uri "$T/s")" >/dev/null
qemu-io -f raw -c 'read -P 0x77 0 1M' "$(uri "$T/s")" | grep -q "read 1048576" ||
    fail "-s export lost a write"
stop_nbd
same_file top.qcow2 top.orig
echo "qcow2 exports: ok"
