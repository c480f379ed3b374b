#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img convert from a source behind the fault filter: a read error
# stops the copy with the offset in the message (qemu-img's wording) and a
# non-zero exit, for raw and qcow2 targets, sparse sources included (the
# filter reports faulted holes as data so that the copy reads them); a
# fault the copy never meets changes nothing.  (convert --salvage, which
# goes on past the error, is convert-salvage.sh.)
. "$VDK_SRC/tests/integration/lib.sh"
qimg create -q -f qcow2 "$T/s.qcow2" 8M
qemu-io -f qcow2 -c 'write -P 0x33 0 2M' -c 'write -P 0x44 6M 1M' "$T/s.qcow2" >/dev/null
SRC="file.driver=qcow2,file.file.filename=$T/s.qcow2"

for tgt in raw qcow2; do
    # In data, then in a hole (4M is unallocated).
    for off in 1M 4M; do
        expect_fail "error while reading at byte [0-9]+: Input/output error" \
            "$VDK_IMG" convert -O "$tgt" --image-opts "driver=fault,ops=read,offset=$off,length=1,$SRC" "$T/out.$tgt"
        want=$(numfmt --from=iec "$off")
        got=$(grep -oE 'at byte [0-9]+' "$T/.err" | grep -oE '[0-9]+')
        # The offset named is that of the chunk that failed: at or before
        # the fault, and within one chunk (at most 32 MiB) of it.
        [ "$got" -le "$want" ] && [ $((want - got)) -lt $((32 << 20)) ] ||
            fail "convert -O $tgt: error at $got for a fault at $want"
    done
    expect_fail "ENOSPC|No space left" \
        "$VDK_IMG" convert -O "$tgt" --image-opts "driver=fault,ops=read,errno=ENOSPC,offset=6M,$SRC" "$T/out.$tgt"
    # A write fault on the source never fires in a copy.
    "$VDK_IMG" convert -O "$tgt" --image-opts "driver=fault,ops=write|flush,$SRC" "$T/out.$tgt" ||
        fail "convert -O $tgt with a write fault on the source"
    qimg compare -q -f qcow2 -F "$tgt" "$T/s.qcow2" "$T/out.$tgt" || fail "copy differs ($tgt)"
done
echo "convert fault: ok"
