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
# What the structure-aware mutator (fuzz-ova.c) makes, from ustar.ova:
# a base-256 size, a size past the end, a size that is not octal, a bad
# header checksum, a pax record with a huge size and one with a bad
# length, the manifest first (the OVF not first), a name with "..".
/usr/bin/python3 - "$out/ustar.ova" "$out" <<'PYEOF'
import sys
src, out = sys.argv[1], sys.argv[2]
img = bytearray(open(src, 'rb').read())
def members(b):
    at, res = 0, []
    while at + 512 <= len(b) and b[at] and b[at + 257:at + 262] == b'ustar':
        size = int(bytes(b[at + 124:at + 135]).rstrip(b'\0 ') or b'0', 8)
        res.append((at, size))
        at += 512 + (size + 511) // 512 * 512
    return res
def seal(b, h):
    b[h + 148:h + 156] = b' ' * 8
    b[h + 148:h + 156] = b'%06o\0 ' % (sum(b[h:h + 512]) & 0o777777)
def seed(name, b):
    open(f'{out}/dmg-{name}.ova', 'wb').write(b)
ms = members(img)
(ovf, _), (mf, mflen), (d1, d1len) = ms[0], ms[1], ms[2]
b = bytearray(img); b[d1 + 124:d1 + 136] = b'\x80' + bytes(3) + d1len.to_bytes(8, 'big'); seal(b, d1)
seed('base256-size', b)
b = bytearray(img); b[d1 + 124:d1 + 136] = b'%011o\0' % (len(img) * 2); seal(b, d1)
seed('size-past-end', b)
b = bytearray(img); b[d1 + 124:d1 + 136] = b'0000000009x\0'; seal(b, d1)
seed('size-not-octal', b)
b = bytearray(img); b[d1 + 150] ^= 1
seed('bad-checksum', b)
b = bytearray(img); b[mf:mf + 512] = bytes(512)
rec = b'30 size=18446744073709551615\n'
b[mf:mf + 100] = b'PaxHeaders/a.mf'.ljust(100, b'\0')
b[mf + 100:mf + 512] = img[mf + 100:mf + 512]
b[mf + 124:mf + 136] = b'%011o\0' % mflen; b[mf + 156] = ord('x'); seal(b, mf)
b[mf + 512:mf + 512 + len(rec)] = rec
seed('pax-huge-size', b)
b2 = bytearray(b); b2[mf + 512:mf + 514] = b'99'
seed('pax-bad-length', b2)
b = bytearray(img[:ovf]) + img[mf:d1] + img[ovf:mf] + img[d1:]
seed('ovf-not-first', b)
b = bytearray(img); b[d1:d1 + 100] = b'../d1.vmdk'.ljust(100, b'\0'); seal(b, d1)
seed('dotdot-name', b)
PYEOF
