#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-boot on a disk behind the fault filter (--disk driver=fault,...):
# the test guest's 64 KiB read of the host pattern fails when one sector
# of it is faulted (the device answers VIRTIO_BLK_S_IOERR; the unit test
# boot-blk checks the status byte itself), and the same guest passes when
# the fault lies where it never reads.  The real-kernel version (the stock
# kernel's dmesg shows the I/O error at the faulted sector, the rest of the
# disk reads) is the flt- disk of boot-debian's disks scenario
# (lane/scenarios.sh).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/common.sh"
need_kvm

mkdisk "$T/a.raw" raw
# One sector inside the guest's first read: the guest sees the error.
boot --kernel "$GUEST_ELF" --timeout 300 \
    --disk "driver=fault,ops=read,offset=32k,length=512,file.driver=raw,file.filename=$T/a.raw"
grep -q 'VDK-GUEST-FAIL: read failed' "$T/out" ||
    { cat "$T/out" "$T/err" >&2; fail "guest did not see the faulted read fail"; }
[ "$rc" -ne 0 ] || fail "vdk-boot passed a guest whose disk read failed"

# Faults where the guest does not go (and a write fault past its writes):
# the guest passes and its writes land.
mkdisk "$T/b.raw" raw
expect_rc 0 --kernel "$GUEST_ELF" --timeout 300 \
    --disk "driver=fault,ops=read|write,offset=7M,length=4k,file.driver=raw,file.filename=$T/b.raw,serial=faulty"
grep -q 'VDK-GUEST-PASS' "$T/out" || fail "guest did not pass"
grep -q "id 'faulty'" "$T/out" || fail "serial= not passed through with driver="
check_disk "$T/b.raw" raw

# Bad fault options are refused before the guest starts.
boot --kernel "$GUEST_ELF" --disk "driver=fault,errno=EFOO,file.filename=$T/b.raw"
[ "$rc" -eq 1 ] && grep -q 'errno=EFOO' "$T/err" || { cat "$T/err" >&2; fail "errno=EFOO not refused"; }
boot --kernel "$GUEST_ELF" --disk "driver=fault,file=$T/b.raw"
[ "$rc" -eq 1 ] && grep -q 'file.filename' "$T/err" || { cat "$T/err" >&2; fail "file= with driver= not refused"; }
echo "boot fault: ok"
