#!/bin/bash
# SPDX-License-Identifier: MIT
# OVA archives built now with tar (ustar and pax, two streamOptimized
# disks from vdk and qemu-img, an OVF and a SHA-256/SHA-1 manifest):
#  - info lists the disks with their sizes;
#  - convert takes the first disk by default, disk=2 through --image-opts;
#  - verify=on checks the manifest and names the file on a mismatch;
#  - a hostile OVF (entity declaration, a file id listed twice), a
#    truncated archive, a disk past the end and a missing disk get clean
#    errors.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/vmdk/vmdk-lib.sh"
cd "$T"

head -c 2M /dev/urandom > a.raw; truncate -s 10M a.raw
head -c 1M /dev/urandom > b.raw; truncate -s 5M b.raw
"$VDK_IMG" convert -O vmdk -o subformat=streamOptimized a.raw app-disk1.vmdk
qemu-img convert -O vmdk -o subformat=streamOptimized b.raw app-disk2.vmdk
ovf() {
cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References>
    <File ovf:href="app-disk1.vmdk" ovf:id="file1"/>
    <File ovf:href="app-disk2.vmdk" ovf:id="file2"/>
  </References>
  <!-- <Disk ovf:capacity="1"/> in a comment is no disk -->
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="10" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="5242880" ovf:diskId="vmdisk2" ovf:fileRef="file2" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
</Envelope>
XML
}
ovf > app.ovf
sha256sum app.ovf app-disk1.vmdk | awk '{print "SHA256(" $2 ")= " $1}' > app.mf
sha1sum app-disk2.vmdk | awk '{print "SHA1(" $2 ")= " $1}' >> app.mf
tar --format=ustar -cf app.ova app.ovf app.mf app-disk1.vmdk app-disk2.vmdk
tar --format=pax -cf pax.ova app.ovf app.mf app-disk1.vmdk app-disk2.vmdk

for ova in app.ova pax.ova; do
    "$VDK_IMG" info "$ova" >info.txt
    grep -q '^file format: ova' info.txt || fail "$ova: not probed as ova"
    grep -q 'filename: app-disk2.vmdk' info.txt && grep -q 'virtual size: 5242880' info.txt ||
        { cat info.txt; fail "$ova: info does not list the disks"; }
    "$VDK_IMG" info --output=json "$ova" | grep -q '"virtual-size": 10485760' || fail "json"
    rm -f d1.qcow2 d2.raw
    "$VDK_IMG" convert "$ova" d1.qcow2
    qemu-img compare -q -F raw d1.qcow2 a.raw || fail "$ova: first disk differs"
    "$VDK_IMG" convert --image-opts "driver=ova,file.filename=$ova,disk=2,verify=on" -O raw d2.raw
    same_file d2.raw b.raw
    "$VDK_IMG" compare -q -f ova -F raw "$ova" a.raw || fail "$ova: compare"
done
# read in place: nothing extracted next to the archive
[ "$(ls | grep -c '^app-disk')" = 2 ] || fail "files appeared beside the OVA"

# manifest mismatch, missing manifest, bad disk index, read-only
cp app-disk2.vmdk keep.vmdk
printf 'X' | dd of=app-disk2.vmdk bs=1 seek=70000 conv=notrunc status=none
tar --format=ustar -cf bad.ova app.ovf app.mf app-disk1.vmdk app-disk2.vmdk
expect_fail "SHA1 digest of 'app-disk2.vmdk' does not match the manifest" \
    "$VDK_IMG" info --image-opts driver=ova,file.filename=bad.ova,verify=on
"$VDK_IMG" info bad.ova >/dev/null || fail "without verify=on the manifest is not read"
mv keep.vmdk app-disk2.vmdk
tar --format=ustar -cf nomf.ova app.ovf app-disk1.vmdk app-disk2.vmdk
expect_fail "has no manifest to verify" \
    "$VDK_IMG" info --image-opts driver=ova,file.filename=nomf.ova,verify=on
expect_fail "disk=3: the OVA has 2 disks" \
    "$VDK_IMG" info --image-opts driver=ova,file.filename=app.ova,disk=3
expect_fail "read-only" "$VDK_IMG" resize -f ova app.ova 20M

# a tar that does not start with an OVF is no OVA (probed as raw)
tar --format=pax -cf plain.tar app-disk1.vmdk app.ovf
"$VDK_IMG" info plain.tar | grep -q '^file format: raw' || fail "a plain tar probed as ova"

# hostile and damaged archives
{ echo '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'; ovf | tail -n +2; } > app.ovf
tar --format=ustar -cf ent.ova app.ovf app-disk1.vmdk
expect_fail "no entity expansion" "$VDK_IMG" info -f ova ent.ova
# two File entries with one id (fuzz-ova's campaign found a leak there)
ovf | sed 's/ovf:id="file2"/ovf:id="file1"/' > app.ovf
tar --format=ustar -cf dupid.ova app.ovf app-disk1.vmdk app-disk2.vmdk
expect_fail "OVF file id 'file1' is listed more than once" "$VDK_IMG" info -f ova dupid.ova
ovf > app.ovf
head -c 30000 app.ova > trunc.ova
expect_fail "runs past the end of the archive|no OVF|does not hold" "$VDK_IMG" info -f ova trunc.ova
tar --format=ustar -cf nodisk.ova app.ovf app-disk1.vmdk
expect_fail "which the OVA does not hold" \
    "$VDK_IMG" info --image-opts driver=ova,file.filename=nodisk.ova,disk=2
cp app.ova sum.ova; printf 'Z' | dd of=sum.ova bs=1 seek=10 conv=notrunc status=none
expect_fail "bad tar header" "$VDK_IMG" info -f ova sum.ova
echo ok
