#!/bin/bash
# SPDX-License-Identifier: MIT
# Randomised cross-check of the zero-run rule: images with extents of
# random data, text and allocated zeros at random (often unaligned)
# offsets and lengths, odd total sizes, converted by both tools with a
# random -S; the outputs must have the same bytes and the same allocation
# map.  The seed is printed so that a failure can be replayed:
#   CONVERT_SEED=1234 meson test img-convert-random
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/convert/common.sh"
cd "$T"

seed=${CONVERT_SEED:-$(date +%s)}
echo "seed $seed"
RANDOM=$seed
kinds=(r t z)
sparse=(512 1k 4k 8k 64k 1M 16M)
for i in $(seq 12); do
    size=$(( (RANDOM % 6 + 1) * 1048576 + RANDOM % 4096 ))
    ext=()
    for _ in $(seq $((RANDOM % 12 + 1))); do
        off=$(( (RANDOM * 32768 + RANDOM) % size ))
        len=$(( RANDOM % 4 == 0 ? RANDOM * 16 % 3000000 + 1 : RANDOM % 20000 + 1 ))
        [ $((off + len)) -le "$size" ] || len=$((size - off))
        ext+=("$off:$len:${kinds[RANDOM % 3]}")
    done
    mkimg "r$i.raw" "$size" "${ext[@]}"
    s=${sparse[RANDOM % ${#sparse[@]}]}
    qemu-img convert -S "$s" "r$i.raw" "q$i.raw"
    "$VDK_IMG" convert -S "$s" "r$i.raw" "v$i.raw" || fail "image $i (-S $s) failed"
    same_file "v$i.raw" "q$i.raw"
    same_map "v$i.raw" "q$i.raw"
done
# The same images concatenated, with parallel out-of-order writes.
qemu-img convert r*.raw q-all.raw
"$VDK_IMG" convert -m 16 -W r*.raw v-all.raw
same_file v-all.raw q-all.raw
same_map v-all.raw q-all.raw
# compare on the same images: identical to their copies, and the same
# verdict, message and exit code as qemu-img between different ones.
for i in $(seq 11); do
    "$VDK_IMG" compare -q "r$i.raw" "v$i.raw" || fail "compare: r$i and its copy differ"
    qrc=0 vrc=0
    qemu-img compare "r$i.raw" "r$((i + 1)).raw" > cq.out 2>&1 || qrc=$?
    "$VDK_IMG" compare "r$i.raw" "r$((i + 1)).raw" > cv.out 2>&1 || vrc=$?
    [ "$qrc" = "$vrc" ] || fail "compare r$i r$((i + 1)): exit $vrc, qemu-img $qrc"
    diff cq.out cv.out >&2 || fail "compare r$i r$((i + 1)): output differs"
done

# -n over old data, with and without --target-is-zero.
total=$(stat -c %s q-all.raw)
head -c $((total + 65536)) /dev/urandom > n-q.raw
for z in "" --target-is-zero; do
    cp n-q.raw n-q2.raw
    cp n-q.raw n-v2.raw
    qemu-img convert -n $z r*.raw n-q2.raw
    "$VDK_IMG" convert -n $z r*.raw n-v2.raw
    same_file n-v2.raw n-q2.raw
    same_map n-v2.raw n-q2.raw
done
echo "convert-random: ok"
