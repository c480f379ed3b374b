#!/bin/bash
# SPDX-License-Identifier: MIT
# A source file cut short during a convert, by a process that ignores the
# image locks.  With file.map=on vdk-img reads raw, qcow2 and vpc sources
# through a file mapping, where the cut would raise SIGBUS; by default it
# reads with pread, where the cut gives short reads.  Either way it must
# finish or fail with a message, never die of a signal, for raw and qcow2
# targets.  Without the cut, both paths must equal qemu-img's output.
. "$VDK_SRC/tests/integration/lib.sh"
cd "$T"

M=$((1024 * 1024))
make_src() { # NAME: 64 MiB of random data with holes
    truncate -s $((64 * M)) "$1"
    local i
    for i in 0 8 16 24 32 40 48 56; do
        head -c $((6 * M)) /dev/urandom | dd of="$1" bs=1M seek=$i conv=notrunc status=none
    done
}
make_src master.raw
qemu-img convert -f raw -O qcow2 master.raw master.qcow2

src() { # FORMAT FILE MAP
    echo "driver=$1,file.filename=$2,file.map=$3"
}

# Uncut: both paths (qcow2 target included) give qemu-img's content.
for sfmt in raw qcow2; do
    for tfmt in raw qcow2; do
        "$VDK_IMG" convert --image-opts "$(src $sfmt master.$sfmt on)" -O $tfmt v.$tfmt ||
            fail "convert $sfmt -> $tfmt (mapped) failed"
        qemu-img compare -q -f raw -F $tfmt master.raw v.$tfmt ||
            fail "convert $sfmt -> $tfmt (mapped): content differs"
        rm -f v.$tfmt
        "$VDK_IMG" convert -f $sfmt -O $tfmt master.$sfmt v.$tfmt ||
            fail "convert $sfmt -> $tfmt failed"
        qemu-img compare -q -f raw -F $tfmt master.raw v.$tfmt ||
            fail "convert $sfmt -> $tfmt: content differs"
        [ $tfmt = qcow2 ] && { qemu-img check -q v.qcow2 || fail "$sfmt -> qcow2: check"; }
        rm -f v.$tfmt
    done
done

# Cut at several moments.  The mapping is made at the start, so a cut
# after that hits the mapped path.
n=0
for map in on off; do
for sfmt in raw qcow2; do
    for tfmt in raw qcow2; do
        for delay in 0.01 0.03 0.06 0.1; do
            cp master.$sfmt src.$sfmt
            "$VDK_IMG" convert -m 1 --image-opts "$(src $sfmt src.$sfmt $map)" -O $tfmt \
                out.$tfmt 2>err.txt &
            pid=$!
            sleep $delay
            truncate -s $M src.$sfmt
            rc=0
            wait $pid || rc=$?
            [ $rc -lt 128 ] || fail "$sfmt -> $tfmt (cut after ${delay}s): killed by signal $((rc - 128))"
            if [ $rc -ne 0 ]; then
                [ "$(wc -l < err.txt)" -ge 1 ] || fail "$sfmt -> $tfmt: failed without a message"
            fi
            if [ -f out.$tfmt ] && [ $tfmt = qcow2 ]; then
                # Whatever was written is a consistent image.
                qemu-img check -q out.qcow2 >/dev/null 2>&1
                c=$?
                [ $c -eq 0 ] || [ $c -eq 3 ] || fail "$sfmt -> qcow2 (cut): image corrupt"
            fi
            rm -f out.$tfmt src.$sfmt
            n=$((n + 1))
        done
    done
done
done
echo "ok: $n cut runs, no signal deaths"
