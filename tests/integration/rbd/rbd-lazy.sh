#!/bin/bash
# SPDX-License-Identifier: MIT
# librbd and librados are loaded when the first rbd node opens, not at
# start: vdk-img does not link them (nor libceph-common or boost), and with
# librbd made unloadable (a private mount namespace binds /dev/null over it)
# an rbd: name fails with one line saying librbd is not installed while
# every other image still works.
. "$VDK_SRC/tests/integration/lib.sh"

ldd "$VDK_IMG" >"$T/ldd" || fail "ldd $VDK_IMG failed"
if grep -Ei 'librbd|librados|ceph|boost' "$T/ldd"; then
    fail "vdk-img loads librbd/librados at start"
fi

lib=$(ldconfig -p | awk '$1 == "librbd.so.1" { print $NF; exit }')
# Runs "$@" with librbd.so.1 unloadable (or as is when it is not installed).
without_librbd() {
    if [ -z "$lib" ]; then "$@"; return; fi
    unshare -rm sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh "$lib" "$@"
}
if [ -n "$lib" ] && ! unshare -rm sh -c 'mount --bind /dev/null "$1"' sh "$lib" 2>/dev/null; then
    skip "no unprivileged mount namespace to hide $lib in"
fi

expect_fail '^vdk-img: .*rbd: librbd is not installed \(package librbd1\)' \
    without_librbd "$VDK_IMG" info rbd:pool/image
[ "$(wc -l <"$T/.err")" -eq 1 ] || { cat "$T/.err" >&2; fail "error is not one line"; }
expect_fail 'librbd is not installed' \
    without_librbd "$VDK_IMG" create -f raw rbd:pool/image 1M

without_librbd "$VDK_IMG" create -q -f qcow2 "$T/a.qcow2" 1M ||
    fail "create without librbd"
without_librbd "$VDK_IMG" info "$T/a.qcow2" >"$T/info" || fail "info without librbd"
grep -q 'qcow2' "$T/info" || fail "info without librbd: $(cat "$T/info")"
echo "ok"
