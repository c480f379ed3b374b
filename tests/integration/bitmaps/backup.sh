#!/bin/bash
# SPDX-License-Identifier: MIT
# An incremental backup end to end: a full copy with nbdcopy from vdk-nbd,
# writes through vdk-boot (where /dev/kvm works), vdk-nbd and qemu-io, then
# an incremental copy of only the extents vdk-nbd -B reports dirty (libnbd),
# which must equal the image; the dirty extents equal qemu-nbd -B's.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/bitmaps/common.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"

img=$T/disk.qcow2
qemu-img create -q -f qcow2 "$img" 16M
retry_setup qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0x77 3M 64k' \
    -c 'write -P 0x11 8M 2M' "$img" >/dev/null
# The full backup and the bitmap that tracks what follows it.
"$VDK_IMG" bitmap --add -g 4k "$img" inc0
start_nbd "$T/s" -t -r -f qcow2 "$img"
nbdcopy "$(uri "$T/s")" "$T/backup.raw" || fail "nbdcopy full backup"
stop_nbd
qemu-img compare -q -f raw -F qcow2 "$T/backup.raw" "$img" || fail "full backup differs"

# Writes through every client.
ran_boot=no
if [ -e /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    . "$VDK_SRC/tests/integration/boot/common.sh"
    boot --kernel "$GUEST_ELF" --disk "$img,format=qcow2" --timeout 300
    if [ "$rc" -eq 1 ] && grep -q '/dev/kvm\|KVM' "$T/err"; then
        echo "note: /dev/kvm is not usable; no vdk-boot writes" >&2
    else
        [ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "guest run failed"; }
        ran_boot=yes
    fi
fi
start_nbd "$T/s" -t -f qcow2 --discard=unmap "$img"
qemu-io -f raw -c 'write -P 0x33 5M 100k' -c 'write -z 9M 300k' -c 'discard 12M 1M' \
    -c 'write -P 0x44 16773120 4096' "$(uri "$T/s")" >/dev/null || fail "qemu-io via vdk-nbd"
stop_nbd
retry_setup qemu-io -f qcow2 -c 'write -P 0x55 7M 3k' -c 'write -P 0x66 12M 512' "$img" >/dev/null

# The dirty extents as both servers report them.
qmap "$img" inc0 >"$T/map.q"
vmap "$img" inc0 >"$T/map.v" || fail "vdk-nbd -B"
same_file "$T/map.q" "$T/map.v"
grep -q dirty "$T/map.v" || fail "nothing dirty"
[ $ran_boot = no ] || grep -qE '^ +1048576 ' "$T/map.v" || fail "the guest's write is not dirty"

# The incremental copy: only dirty extents, read through vdk-nbd.
cat >"$T/inc.py" <<'PY'
import nbd, sys
h = nbd.NBD()
h.add_meta_context("qemu:dirty-bitmap:inc0")
h.connect_uri(sys.argv[1])
size, out, dirty, off = h.get_size(), open(sys.argv[2], "r+b"), [], 0
while off < size:
    got = []
    h.block_status(min(size - off, 1 << 30), off,
                   lambda ctx, o, e, err: got.extend(zip(e[0::2], e[1::2])) or 0)
    for ln, fl in got:
        if fl & 1:
            dirty.append((off, ln))
        off += ln
copied = 0
for o, ln in dirty:
    out.seek(o)
    out.write(h.pread(ln, o))
    copied += ln
print(copied)
PY
start_nbd "$T/s" -t -r -f qcow2 -B inc0 "$img"
copied=$($PY "$T/inc.py" "$(uri "$T/s")" "$T/backup.raw") || fail "incremental copy"
stop_nbd
qemu-img compare -q -f raw -F qcow2 "$T/backup.raw" "$img" ||
    fail "the image differs from full + incremental backup"
[ "$copied" -lt $((16 << 20)) ] || fail "the incremental copy copied everything"
echo "incremental copy: $copied bytes of $((16 << 20))" >&2
qemu_clean "$img"
echo ok
