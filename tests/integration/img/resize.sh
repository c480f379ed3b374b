#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img resize beside qemu-img resize: grow, shrink and preallocation,
# checked with stat and with qemu-img's view of the result.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

# start_size resize-args...: apply to twins, compare output, size, allocation
twin() {
    local start=$1; shift
    local vargs=() qargs=() a vrc=0 qrc=0
    for a in "$@"; do vargs+=("${a//IMG/v.raw}"); qargs+=("${a//IMG/q.raw}"); done
    rm -f v.raw q.raw
    qimg create -q -f raw v.raw "$start"
    [ "$start" = 0 ] || retry_setup qemu-io -f raw -c "write -P 5 0 64k" v.raw >/dev/null
    cp --sparse=always v.raw q.raw
    "$VDK_IMG" resize "${vargs[@]}" >v.out 2>v.err || vrc=$?
    qimg resize "${qargs[@]}" >q.out 2>q.err || qrc=$?
    [ "$vrc" = "$qrc" ] || { cat v.err q.err; fail "resize $*: exit $vrc, qemu-img $qrc"; }
    cmp -s v.out q.out || { diff q.out v.out || true; fail "resize $*: output"; }
    sed 's/^vdk-img/qemu-img/' v.err | cmp -s - q.err || { diff q.err v.err || true; fail "resize $*: errors"; }
    [ "$(size_of v.raw)" = "$(size_of q.raw)" ] || fail "resize $*: size differs"
    [ "$(alloc v.raw)" = "$(alloc q.raw)" ] ||
        fail "resize $*: allocation $(alloc v.raw) vs qemu-img's $(alloc q.raw)"
    qimg compare -f raw -F raw v.raw q.raw >/dev/null || fail "resize $*: contents differ"
}

twin 4M -f raw IMG 8M
twin 4M -f raw IMG +1M
twin 4M -f raw IMG +0
twin 4M -f raw IMG 4M
twin 4M -f raw IMG 1M
twin 4M -f raw --shrink IMG 1M
twin 4M -f raw --shrink IMG 32k
twin 4M -f raw --shrink IMG -1M
twin 4M -f raw IMG -1M
twin 4M -f raw --shrink IMG -- -3M
twin 4M -f raw --shrink IMG -4M
twin 4M -f raw IMG -5M
twin 4M -f raw -q IMG 6M
twin 1M -f raw --preallocation=off IMG 3M
twin 1M -f raw --preallocation=falloc IMG 3M
twin 1M -f raw --preallocation=full IMG 3M
twin 1M -f raw --preallocation=full IMG +2M
twin 4M -f raw --preallocation=falloc --shrink IMG 1M
twin 4M -f raw --preallocation=bogus IMG 5M
twin 4M -f raw IMG 1Q
twin 4M -f raw IMG +99999999T
twin 0 -f raw IMG 1M

# Preallocation shows in the allocation, checked directly too.
rm -f p.raw
"$VDK_IMG" create -q -f raw p.raw 1M
"$VDK_IMG" resize -q -f raw --preallocation=full p.raw 5M
[ "$(size_of p.raw)" = 5242880 ] || fail "full resize size"
[ "$(alloc p.raw)" -ge $((4 << 20)) ] || fail "full resize did not allocate"
"$VDK_IMG" resize -f raw --shrink p.raw 2M >/dev/null
[ "$(size_of p.raw)" = 2097152 ] && [ "$(alloc p.raw)" -le $((2 << 20)) ] || fail "shrink"
echo ok
