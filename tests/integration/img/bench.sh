#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img bench beside qemu-img bench: the same options give the same
# "Sending ..." lines and messages, and the same write runs (offsets,
# step, pattern) leave twin images identical and readable by qemu-io.
# Offsets wrap as in current qemu-img (modulo the image size less one
# buffer; 7.2 wraps modulo the size and may run past the end with EIO),
# so runs that wrap are checked with qemu-io alone.  No timing is asserted.
. "$VDK_SRC/tests/integration/lib.sh"

# same_run ARGS...: both tools on twin images; stdout (the seconds
# masked), stderr (the program name masked) and exit status must agree.
same_run() {
    local rc_q=0 rc_v=0
    qimg bench "$@" "$T/q.img" >"$T/q.out" 2>"$T/q.err" || rc_q=$?
    "$VDK_IMG" bench "$@" "$T/v.img" >"$T/v.out" 2>"$T/v.err" || rc_v=$?
    [ "$rc_q" -eq "$rc_v" ] || { cat "$T/v.err"; fail "bench $*: exit $rc_v, qemu-img $rc_q"; }
    [ "$rc_v" -lt 128 ] || fail "bench $*: crashed"
    for f in out err; do
        sed -e 's/in [0-9]*[.][0-9]\{3\} seconds/in S seconds/' -e 's/qemu-img\( --help\|:\)/P\1/' \
            -e "s|$T/q.img|IMG|g" "$T/q.$f" >"$T/q.$f.m"
        sed -e 's/in [0-9]*[.][0-9]\{3\} seconds/in S seconds/' -e 's/vdk-img\( --help\|:\)/P\1/' \
            -e "s|$T/v.img|IMG|g" "$T/v.$f" >"$T/v.$f.m"
    done
    # qemu-img's stdout is buffered past its error message: compare as sets.
    diff <(sort "$T/q.out.m") <(sort "$T/v.out.m") || fail "bench $*: stdout differs"
    diff "$T/q.err.m" "$T/v.err.m" || fail "bench $*: stderr differs"
}

for fmt in qcow2 raw; do
    qimg create -q -f "$fmt" "$T/q.img" 4M
    cp "$T/q.img" "$T/v.img"
    # Reads, then writes with every layout option; the images must end
    # up identical after each write run.
    same_run -f "$fmt" -c 100
    same_run -f "$fmt" -c 1000 -d 8 -s 512 -S 4k -o 1k
    same_run -f "$fmt" -c 100 -w --pattern=0x5a -o 4096 -s 8k -S 16k -d 4
    same_run -f "$fmt" -c 9 -w --pattern=7 -s 64k -S 100k -o 3M -d 16
    same_run -f "$fmt" -c 50 -w --pattern=010 -s 1k -d 1 --flush-interval=1
    same_run -f "$fmt" -c 100 -w --pattern=255 -d 4 --flush-interval=8 --no-drain -o 2M
    same_run -f "$fmt" -c 10 -w -t none -n --pattern=0x33 -o 1M
    same_run -f "$fmt" -c 10 -w -i io_uring -s 0
    same_run -f "$fmt" -c 0 -w
    qimg compare -f "$fmt" -F "$fmt" "$T/q.img" "$T/v.img" >/dev/null ||
        fail "$fmt: bench writes differ from qemu-img bench's"
    # Where the writes landed, read back by qemu-io: 0x33 at 1M (the last
    # run with data), 0x5a at 4096 + 16k*i (8k each), 0x07 wrapping round.
    qemu-io -f "$fmt" -c 'read -P 0x33 1M 4k' -c 'read -P 0x5a 20480 8k' \
        -c 'read -P 0 12288 4k' "$T/v.img" | grep -c '^read' | grep -qx 3 ||
        fail "$fmt: the written pattern is not where qemu-io reads it"
done

# Wrapping: 960k, then 64k, 128k, ... 896k (14 more), modulo 1M - 64k;
# 0-64k stays zero.
qimg create -q -f raw "$T/w.raw" 1M
"$VDK_IMG" bench -f raw -w --pattern=0x66 -s 64k -c 15 -d 3 -o 960k "$T/w.raw" >/dev/null ||
    fail "bench wrapping"
qemu-io -f raw -c 'read -P 0 0 64k' -c 'read -P 0x66 64k 960k' "$T/w.raw" |
    grep -c '^read' | grep -qx 2 || fail "bench wrap-around offsets"

# Option errors: qemu-img's messages.
qimg create -q -f qcow2 "$T/q.img" 1M
cp "$T/q.img" "$T/v.img"
for args in "-c x" "-c -1" "-c 3000000000" "-d x" "-d -1" "-s x" "-s 3G" "-S -1" "-o x" \
            "-i foo" "-t foo" "--pattern=300 -w" "--pattern=x -w" "--flush-interval=x -w" \
            "-c 10 --flush-interval=10" "-w --flush-interval=10" "-n" "-i native" "-w -U" \
            "-c 10 -o 2M" "-c 1 -s 2M" "-z" "--object secret,id=s,data=x" "-f qcow2 --image-opts"; do
    same_run $args
done
rc=0; "$VDK_IMG" bench -c 1 >/dev/null 2>"$T/e" || rc=$?
[ $rc -eq 1 ] && grep -q "Expecting one image file name" "$T/e" || fail "bench without a file"
# Not qemu-img's: -d 0 never ends there; refused here.
expect_fail "Invalid queue depth specified" "$VDK_IMG" bench -d 0 "$T/v.img"
# --image-opts and a large depth (more than vdk-img's threads).
"$VDK_IMG" bench -c 2000 -d 1000 -w --pattern=0x44 -s 512 \
    --image-opts "driver=qcow2,file.filename=$T/v.img" >"$T/o" || fail "bench --image-opts"
grep -qx "Sending 2000 write requests, 512 bytes each, 1000 in parallel (starting at offset 0, step size 512)" "$T/o" ||
    fail "bench --image-opts output"
qemu-io -f qcow2 -c 'read -P 0x44 0 1000k' "$T/v.img" | grep -q '^read' || fail "bench -d 1000 writes"
echo "bench: ok"
