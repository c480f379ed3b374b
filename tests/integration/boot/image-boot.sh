#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-boot boots what an image holds: the test guest's bzImage and its
# ELF (PVH) put into the GPT/ext4 BLS, GPT/ext4 grub.cfg, MBR/ext4 symlink
# and ESP/BLS layouts (image-lib.sh), through raw, qcow2 and LUKS disks;
# the entry's options reach the guest and the image is not written with
# readonly=on.  The stock Debian kernel boots from these layouts in the
# real-kernel lane (mk_boot_disk is the same).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/common.sh"
. "$VDK_SRC/tests/integration/boot/image-lib.sh"
need_kvm

for l in gpt-ext4-bls gpt-ext4-grub esp-bls; do
    mk_boot_disk "$l" "$T/$l.img" "$GUEST_BZ" "" "vdkguest.action=poweroff"
    cp "$T/$l.img" "$T/orig.img"
    expect_rc 0 --disk "$T/$l.img,format=raw,readonly=on" --timeout 300 -v
    grep -q 'bzImage 64-bit entry' "$T/out" || fail "$l: guest did not come through the bzImage entry"
    grep -q "entry 0 " "$T/err" || fail "$l: -v did not name the entry"
    same_file "$T/$l.img" "$T/orig.img"
    echo "$l: booted"
done
# The symlink layout has no options of its own: --append gives them.
mk_boot_disk mbr-ext4-links "$T/links.img" "$GUEST_ELF" ""
expect_rc 0 --disk "$T/links.img,format=raw,snapshot=on" --append vdkguest.action=poweroff --timeout 300
grep -q 'PVH entry' "$T/out" || fail "symlink layout: guest did not come through the PVH entry"
# Without the action option the guest runs its disk checks, which fail on
# a disk that holds a filesystem: so the option did come from the entry.
qemu-img convert -q -f raw -O qcow2 "$T/gpt-ext4-bls.img" "$T/d.qcow2"
expect_rc 0 --disk "$T/d.qcow2,snapshot=on" --timeout 300
retry_setup --if "$LOAD_FLAKES" qemu-img convert -q -f raw -O luks --object secret,id=s0,data=vdk-test-pass \
    -o key-secret=s0,iter-time=10 "$T/esp-bls.img" "$T/d.luks"
VDK_SECRET=vdk-test-pass expect_rc 0 --disk "$T/d.luks,readonly=on" --timeout 300
echo "qcow2 and LUKS disks: booted"
