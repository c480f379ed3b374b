#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-ova: small OVAs built now with tar (ustar and pax, a long
# name), holding an OVF, a manifest and streamOptimized disks from
# qemu-img; the bare OVF and manifest too, and an OVF naming one file id
# twice.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
head -c 100000 /dev/urandom > r.raw
truncate -s 256K r.raw
qemu-img convert -O vmdk -o subformat=streamOptimized r.raw d1.vmdk
qemu-img create -q -f vmdk -o subformat=streamOptimized d2.vmdk 128K
cat > a.ovf <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="d1.vmdk" ovf:id="f1" ovf:size="1"/><File ovf:href="d2.vmdk" ovf:id="f2"/></References>
  <DiskSection><Info>&amp; &#65; &lt;</Info>
    <Disk ovf:capacity="256" ovf:capacityAllocationUnits="byte * 2^10" ovf:diskId="a" ovf:fileRef="f1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
    <Disk ovf:capacity="131072" ovf:diskId="b" ovf:fileRef="f2"/>
  </DiskSection>
</Envelope>
XML
{ sha256sum a.ovf d1.vmdk; } | awk '{print "SHA256(" $2 ")= " $1}' > a.mf
sha1sum d2.vmdk | awk '{print "SHA1(" $2 ")= " $1}' >> a.mf
tar --format=ustar -cf "$out/ustar.ova" a.ovf a.mf d1.vmdk d2.vmdk
tar --format=pax -cf "$out/pax.ova" a.ovf a.mf d1.vmdk d2.vmdk
long=$(printf 'x%.0s' $(seq 1 120)).vmdk
cp d2.vmdk "$long"
tar --format=gnu -cf "$out/gnu-long.ova" a.ovf "$long"
cp a.ovf a.mf "$out/"
# Two File entries with one id (the campaign's leak in the OVF parser).
sed 's/ovf:id="f2"/ovf:id="f1"/' a.ovf > "$out/dup-file-id.ovf"
