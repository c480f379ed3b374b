#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img convert raw -> raw beside qemu-img convert on generated sparse
# images: content (qemu-img compare both ways), allocation map identical
# to qemu-img's own output, no larger on disk; -S, -n, --target-is-zero,
# several sources, -m/-W, and -p on a pipe.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/convert/common.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

# Holes, random data, text, allocated zero runs inside data (long and
# short), an odd length (rounded up to sectors like qemu-img), data at 0
# and a hole at 0.
M=$((1024 * 1024))
mkimg s1.raw $((3 * M + 1000)) 0:100:r 65536:8192:r 70000:3:t $M:$M:r \
    $((M + 100000)):100000:z $((M + 300000)):3000:z $((3 * M)):512:t
mkimg s2.raw $((5 * M)) 4096:200000:t $((2 * M)):$M:z $((4 * M)):70000:r \
    $((4 * M + 70000)):$((M - 70000)):z
mkimg s3.raw $((2 * M)) $((M + 4096)):12288:r

check_convert() { # NAME ARGS... -- converts with both tools, compares
    local name=$1; shift
    qemu-img convert "$@" "q-$name.raw"
    "$VDK_IMG" convert "$@" "v-$name.raw" || fail "vdk-img convert $* failed"
    qemu-img compare -q "q-$name.raw" "v-$name.raw" || fail "$name: content differs from qemu-img's"
    qemu-img compare -q "v-$name.raw" "q-$name.raw" || fail "$name: compare (reversed) differs"
    [ "$(stat -c %s "v-$name.raw")" = "$(stat -c %s "q-$name.raw")" ] ||
        fail "$name: size differs"
    same_map "v-$name.raw" "q-$name.raw"
    [ "$(blocks "v-$name.raw")" -le "$(blocks "q-$name.raw")" ] ||
        fail "$name: uses more blocks than qemu-img's output"
}

for s in s1 s2 s3; do
    check_convert "$s" -O raw "$s.raw"
    qemu-img compare -q "$s.raw" "v-$s.raw" || fail "$s: output differs from the source"
done
check_convert s1-S0 -S 0 s1.raw
[ "$(blocks v-s1-S0.raw)" -gt "$(blocks v-s1.raw)" ] || fail "-S 0 did not allocate zeros"
check_convert s1-S64k -S 64k s1.raw
check_convert s1-S512 -S 512 s1.raw
check_convert multi s1.raw s2.raw s3.raw
qemu-img compare -q s3.raw v-s3.raw

# Parallelism and out-of-order writes give the same image.
for m in "-m 1" "-m 3 -W" "-m 16" "-W"; do
    "$VDK_IMG" convert $m s1.raw s2.raw s3.raw v-m.raw
    same_file v-m.raw v-multi.raw
    same_map v-m.raw q-multi.raw
done

# -n into an existing target full of data: zeros in range are written
# (as holes), the tail beyond the source is left alone.
head -c $((12 * M)) /dev/urandom > n-q.raw
cp n-q.raw n-v.raw
cp n-q.raw nz-q.raw
cp n-q.raw nz-v.raw
qemu-img convert -n s1.raw s2.raw n-q.raw
"$VDK_IMG" convert -n s1.raw s2.raw n-v.raw
same_file n-v.raw n-q.raw
same_map n-v.raw n-q.raw
# --target-is-zero: zero ranges are skipped, the old data stays.
qemu-img convert -n --target-is-zero s1.raw s2.raw nz-q.raw
"$VDK_IMG" convert -n --target-is-zero s1.raw s2.raw nz-v.raw
same_file nz-v.raw nz-q.raw
# -n with the target given as options.
"$VDK_IMG" convert -n --target-image-opts s1.raw driver=raw,file.filename=n-v.raw
qemu-img compare -q s1.raw n-v.raw && fail "tail beyond the source should differ"
cmp -n $((3 * M + 1024)) n-v.raw v-s1.raw || fail "-n --target-image-opts content"

# -p on a pipe: qemu-img's progress lines (img/progress.sh has the rest).
"$VDK_IMG" convert -p s1.raw s2.raw v-p.raw > p.out
[ -z "$(qemu_progress p.out)" ] || fail "convert -p printed more than progress"
"$VDK_IMG" convert -p -q s1.raw v-p.raw > pq.out
[ ! -s pq.out ] || fail "-q should silence -p"
same_file v-p.raw v-s1.raw

# Sources given as options, and a source read without the mapping (-U).
"$VDK_IMG" convert --image-opts driver=raw,file.filename=s1.raw v-io.raw
same_file v-io.raw v-s1.raw
"$VDK_IMG" convert -U s1.raw s2.raw s3.raw v-u.raw
same_file v-u.raw v-multi.raw
same_map v-u.raw q-multi.raw

# A window of a raw file (offset=/size=): both paths honour it.
dd if=s2.raw of=w.ref bs=1M skip=1 count=3 status=none
for map in off on; do
    "$VDK_IMG" convert --image-opts driver=raw,file.filename=s2.raw,file.map=$map,offset=1M,size=3M v-w.raw
    same_file v-w.raw w.ref
    rm -f v-w.raw
done
# The mapped path gives the same image, holes included.
"$VDK_IMG" convert --image-opts driver=raw,file.filename=s1.raw,file.map=on v-m1.raw
same_file v-m1.raw v-s1.raw
same_map v-m1.raw v-s1.raw

# Source cache modes and -U are accepted.
"$VDK_IMG" convert -U -T none -t writeback s1.raw v-c.raw
same_file v-c.raw v-s1.raw
echo "convert-raw: ok"
