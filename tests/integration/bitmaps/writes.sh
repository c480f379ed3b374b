#!/bin/bash
# SPDX-License-Identifier: MIT
# Every vdk write path keeps the enabled persistent bitmaps as QEMU does:
# the same writes through vdk (vdk-nbd, convert -n, commit, resize,
# vdk-boot's virtio-blk) and through QEMU (qemu-io, qemu-img) leave dirty
# maps that qemu-nbd -B serves identically; disabled bitmaps stay clean;
# vdk-nbd -B serves the same contexts and extents as qemu-nbd -B.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/bitmaps/common.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"

# Twin images q (written by QEMU) and v (written by vdk) with bitmaps of
# three granularities and a disabled one.
twins() { # size [cluster_size]
    qemu-img create -q -f qcow2 -o cluster_size=${2:-64k} "$T/q.qcow2" "$1"
    qemu-img bitmap --add "$T/q.qcow2" dflt
    qemu-img bitmap --add -g 512 "$T/q.qcow2" fine
    qemu-img bitmap --add -g 4M "$T/q.qcow2" coarse
    qemu-img bitmap --add --disable "$T/q.qcow2" off
    cp "$T/q.qcow2" "$T/v.qcow2"
}
all_same() { # what
    same_bitmaps "$T/q.qcow2" "$T/v.qcow2"
    for b in dflt fine coarse off; do same_dirty "$T/q.qcow2" "$T/v.qcow2" $b "$1"; done
    qmap "$T/v.qcow2" off | grep -q dirty && fail "disabled bitmap changed: $1"
    qemu_clean "$T/v.qcow2"
}

# 1. Guest-style writes, write-zeroes and discards: qemu-io on the file
#    against qemu-io through vdk-nbd (seeded random requests, some
#    unaligned, some across cluster and image ends).
RANDOM=${BITMAP_SEED:-4242}
echo "seed ${BITMAP_SEED:-4242}" >&2
twins 48M
size=$((48 << 20))
ops=()
for i in $(seq 60); do
    off=$(( (RANDOM * 32768 + RANDOM) % size ))
    len=$(( RANDOM % 3 == 0 ? RANDOM % 700 + 1 : (RANDOM % 300 + 1) * 512 ))
    [ $((off + len)) -le $size ] || len=$((size - off))
    case $((RANDOM % 4)) in
        0|1) ops+=(-c "write -P $((i % 250 + 1)) $off $len");;
        2) ops+=(-c "write -z $off $len");;
        3) ops+=(-c "discard $off $len");;
    esac
done
retry_setup qemu-io -d unmap -f qcow2 "${ops[@]}" "$T/q.qcow2" >/dev/null ||
    fail "qemu-io on the file"
start_nbd "$T/s" -t -f qcow2 --discard=unmap "$T/v.qcow2"
qemu-io -f raw "${ops[@]}" "$(uri "$T/s")" >/dev/null || fail "qemu-io through vdk-nbd"
stop_nbd
qemu-img compare -q "$T/q.qcow2" "$T/v.qcow2" || fail "the data differs"
all_same "qemu-io through vdk-nbd"

# 2. vdk-nbd -B serves what qemu-nbd -B serves: the context list and every
#    bitmap's extents, read-only and writable, small and whole requests.
for b in dflt fine coarse off; do
    qmap "$T/v.qcow2" $b >"$T/m.q"
    vmap "$T/v.qcow2" $b >"$T/m.v" || fail "vdk-nbd -B $b"
    cmp -s "$T/m.q" "$T/m.v" || { diff "$T/m.q" "$T/m.v" >&2; fail "vdk-nbd -B $b differs"; }
    nbdinfo --map="qemu:dirty-bitmap:$b" --totals -- [ qemu-nbd -f qcow2 -B $b "$T/v.qcow2" ] >"$T/t.q"
    nbdinfo --map="qemu:dirty-bitmap:$b" --totals -- [ "$VDK_NBD" -f qcow2 -B $b "$T/v.qcow2" ] \
        >"$T/t.v" 2>>"$T/nbd.log"
    same_file "$T/t.q" "$T/t.v"
done
# -s: the bitmap of the image under the throwaway overlay.
nbdinfo --map=qemu:dirty-bitmap:fine -- [ qemu-nbd -s -f qcow2 -B fine "$T/v.qcow2" ] >"$T/s.q"
nbdinfo --map=qemu:dirty-bitmap:fine -- [ "$VDK_NBD" -s -f qcow2 -B fine "$T/v.qcow2" ] \
    >"$T/s.v" 2>>"$T/nbd.log"
same_file "$T/s.q" "$T/s.v"
nbdinfo --list -- [ qemu-nbd -r -f qcow2 -B off -B fine -B dflt "$T/v.qcow2" ] |
    grep -A6 contexts >"$T/l.q"
nbdinfo --list -- [ "$VDK_NBD" -r -f qcow2 -B off -B fine -B dflt "$T/v.qcow2" ] 2>>"$T/nbd.log" |
    grep -A6 contexts >"$T/l.v"
cmp -s "$T/l.q" "$T/l.v" || { diff "$T/l.q" "$T/l.v" >&2; fail "context lists differ"; }
# Requests of every size (libnbd, REQ_ONE and not) against both servers.
cat >"$T/bs.py" <<'PY'
import nbd, sys, random
random.seed(int(sys.argv[2]))
h = nbd.NBD()
h.add_meta_context("qemu:dirty-bitmap:fine")
h.add_meta_context("qemu:dirty-bitmap:coarse")
h.connect_uri(sys.argv[1])
size = h.get_size()
for i in range(200):
    off = random.randrange(0, size - 1)
    ln = random.randrange(1, min(size - off, 64 << 20) + 1)
    got = []
    h.block_status(ln, off, lambda ctx, o, e, err: got.append((ctx, o, list(e))) or 0,
                   nbd.CMD_FLAG_REQ_ONE if i % 3 == 0 else 0)
    print(off, ln, sorted(got))
PY
qemu-nbd -r -f qcow2 -B fine -B coarse -k "$T/qs" "$T/v.qcow2" &
qpid=$!
for i in $(seq 100); do [ -S "$T/qs" ] && break; sleep 0.05; done
$PY "$T/bs.py" "nbd+unix:///?socket=$T/qs" 7 >"$T/bs.q" || fail "libnbd against qemu-nbd"
kill $qpid 2>/dev/null || true; wait $qpid 2>/dev/null || true
start_nbd "$T/s" -t -r --export "name=,file=$T/v.qcow2,format=qcow2,bitmap=fine,bitmap=coarse"
$PY "$T/bs.py" "$(uri "$T/s")" 7 >"$T/bs.v" || fail "libnbd against vdk-nbd"
stop_nbd
cmp -s "$T/bs.q" "$T/bs.v" || { diff "$T/bs.q" "$T/bs.v" | head >&2; fail "block status replies differ"; }
expect_fail "Bitmap 'nope' is not found" "$VDK_NBD" -r -f qcow2 -B nope -k "$T/x" "$T/v.qcow2"
expect_fail "Bitmap 'nope' is not found" "$VDK_NBD" -k "$T/x" --export "name=a,file=$T/v.qcow2,bitmap=nope"

# 3. convert -n into an image with bitmaps (and --target-is-zero).
qemu-img create -q -f qcow2 "$T/src.qcow2" 48M
retry_setup qemu-io -f qcow2 -c 'write -P 7 1M 3M' -c 'write -z 10M 1M' -c 'write -P 9 40M 4k' \
    "$T/src.qcow2" >/dev/null
for tz in "" --target-is-zero; do
    twins 48M
    qemu-img convert -n $tz -O qcow2 "$T/src.qcow2" "$T/q.qcow2"
    "$VDK_IMG" convert -n $tz -O qcow2 "$T/src.qcow2" "$T/v.qcow2"
    all_same "convert -n $tz"
done

# 4. commit into a base with bitmaps (opened read-only, reopened
#    read-write for the commit).
twins 48M
for k in q v; do
    qemu-img create -q -f qcow2 -b "$T/$k.qcow2" -F qcow2 "$T/top$k.qcow2"
    retry_setup qemu-io -f qcow2 -c 'write -P 1 100k 5k' -c 'write -z 20M 1M' -c 'write 40M 3M' \
        "$T/top$k.qcow2" >/dev/null
done
qemu-img commit -q "$T/topq.qcow2"
"$VDK_IMG" commit -q "$T/topv.qcow2"
all_same "commit"

# 5. resize (the bitmaps grow and shrink with the image), then writes.
twins 8M
for k in q v; do
    tool=qemu-img; [ $k = v ] && tool=$VDK_IMG
    "$tool" resize -q "$T/$k.qcow2" 20M
    retry_setup qemu-io -f qcow2 -c 'write 7M 2M' -c 'write 19M 1M' "$T/$k.qcow2" >/dev/null
    "$tool" resize -q --shrink "$T/$k.qcow2" 12M
done
all_same "resize"

# 6. vdk-boot: the test guest's virtio-blk writes, write-zeroes and
#    discards, beside qemu-io doing the same requests.
if [ -e /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    . "$VDK_SRC/tests/integration/boot/common.sh"
    twins 8M
    for k in q v; do
        retry_setup qemu-io -f qcow2 -c "write -P 0x5a 0 64k" -c "write -P 0x77 3M 64k" \
            "$T/$k.qcow2" >/dev/null
    done
    boot --kernel "$GUEST_ELF" --disk "$T/v.qcow2,format=qcow2" --timeout 300
    if [ "$rc" -eq 1 ] && grep -q '/dev/kvm\|KVM' "$T/err"; then
        echo "note: /dev/kvm is not usable; the vdk-boot case did not run" >&2
    else
        [ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "guest run failed"; }
        zq=(-c "write -P 0xc3 1M 64k" -c "write 2M 4k" -c "write -z 3M 64k")
        grep -q 'discard ok' "$T/out" && zq+=(-c "discard 4M 64k")
        retry_setup qemu-io -d unmap -f qcow2 "${zq[@]}" "$T/q.qcow2" >/dev/null
        all_same "vdk-boot virtio-blk"
    fi
else
    echo "note: no usable /dev/kvm; the vdk-boot case did not run" >&2
fi
echo ok
