#!/bin/bash
# SPDX-License-Identifier: MIT
# VMDK and OVA exports: each VMDK layout served by vdk-nbd reads (nbdcopy)
# and maps (nbdinfo --map) as qemu-nbd serves the same image; a writable
# monolithicSparse export takes qemu-io's writes and passes qemu-img check;
# an OVA is exported read-only, its disk read in place, byte for byte what
# qemu-nbd serves from the extracted disk; a read-write OVA export is
# refused.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
cd "$T"

head -c 3M /dev/urandom > a.raw
truncate -s 24M a.raw
dd if=/dev/urandom of=a.raw bs=64k seek=200 count=5 conv=notrunc status=none
qemu-img convert -f raw -O vmdk a.raw sparse.vmdk
qemu-img convert -f raw -O vmdk -o subformat=monolithicFlat a.raw flat.vmdk
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentSparse a.raw split.vmdk
"$VDK_IMG" convert -f raw -O vmdk -o subformat=streamOptimized a.raw stream.vmdk
/usr/bin/python3 "$VDK_SRC/tests/integration/vmdk/mk-sesparse.py" se.vmdk 40960 --seed 5 >/dev/null

# qemu_serve SOCK IMG FMT: qemu-nbd read-only on SOCK (set-up, retried)
qemu_serve() {
    rm -f "$1"
    qemu-nbd -t -r -f "$3" -k "$1" "$2" 2>>"$T/qemu-nbd.log" &
    QPID=$!
    for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
    fail "qemu-nbd did not listen"
}
qemu_stop() { kill "$QPID"; wait "$QPID" 2>/dev/null || true; }

for img in sparse flat split stream se; do
    start_nbd "$T/s" -t -r -f vmdk "$img.vmdk"
    nbdcopy "$(uri "$T/s")" v.raw
    nbdinfo --map "$(uri "$T/s")" > v.map
    stop_nbd
    qemu_serve "$T/q" "$img.vmdk" vmdk
    nbdcopy "$(uri "$T/q")" q.raw
    nbdinfo --map "$(uri "$T/q")" > q.map
    qemu_stop
    same_file v.raw q.raw
    diff -u q.map v.map || fail "$img: base:allocation differs from qemu-nbd's"
done

# writable monolithicSparse export
start_nbd "$T/s" -t -f vmdk sparse.vmdk
qemu-io -f raw -c 'write -P 0x33 2M 300k' -c 'write -P 0x44 20M 64k' "$(uri "$T/s")" >/dev/null
stop_nbd
qemu-img check -q sparse.vmdk || fail "qemu-img check after writes through vdk-nbd"
qemu-io -f vmdk -c 'read -P 0x33 2M 300k' -c 'read -P 0x44 20M 64k' sparse.vmdk |
    grep -q 'read 65536' || fail "writes through vdk-nbd did not land"

# OVA: read-only, in place
cat > app.ovf <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">
  <References><File ovf:href="stream.vmdk" ovf:id="file1"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="25165824" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
</Envelope>
XML
tar --format=ustar -cf app.ova app.ovf stream.vmdk
mkdir x && tar -C x -xf app.ova
start_nbd "$T/s" -t -r app.ova
nbdcopy "$(uri "$T/s")" v.raw
nbdinfo --map "$(uri "$T/s")" > v.map
stop_nbd
qemu_serve "$T/q" x/stream.vmdk vmdk
nbdcopy "$(uri "$T/q")" q.raw
nbdinfo --map "$(uri "$T/q")" > q.map
qemu_stop
same_file v.raw q.raw
same_file v.raw a.raw
diff -u q.map v.map || fail "ova: base:allocation differs from qemu-nbd's"
expect_fail 'read-only|read only' "$VDK_NBD" -t -f ova -k "$T/w" app.ova
echo "nbd vmdk ok"
