#!/bin/bash
# SPDX-License-Identifier: MIT
# convert -r and commit -r: real rate limits (one token bucket,
# vdk/ratelimit.h).  8 MiB at -r 4M cannot take less than about 2 s (the
# bucket lets a tenth of a second through at once), so each run must
# take at least 1.5 s: a limiter that does nothing is caught.  Only this
# lower bound is asserted; a loaded machine makes the runs slower, never
# faster.  The copies are checked against the source with qemu-img, and
# the option's messages against qemu-img's.
. "$VDK_SRC/tests/integration/lib.sh"

ms() { echo $(( $(date +%s%N) / 1000000 )); }
# at_least MIN_MS WHAT CMD...: run CMD, which must succeed and take MIN_MS.
at_least() {
    local min=$1 what=$2; shift 2
    local t0 t1
    t0=$(ms)
    "$@" >/dev/null || fail "$what failed"
    t1=$(ms)
    echo "$what: $((t1 - t0)) ms"
    [ $((t1 - t0)) -ge "$min" ] || fail "$what took $((t1 - t0)) ms: not rate limited"
}

qimg create -q -f raw "$T/s.raw" 8M
qemu-io -f raw -c 'write -P 0x5a 0 8M' "$T/s.raw" >/dev/null

# convert: every worker pays the one bucket, in order or not (-W), and
# compressed writes too.
at_least 1500 "convert -r 4M" "$VDK_IMG" convert -r 4M -f raw -O raw "$T/s.raw" "$T/o.raw"
qimg compare -q -f raw -F raw "$T/s.raw" "$T/o.raw" || fail "convert -r copy differs"
at_least 1500 "convert -r 4096k -W -m 16" \
    "$VDK_IMG" convert -r 4096k -W -m 16 -f raw -O qcow2 "$T/s.raw" "$T/o.qcow2"
qimg compare -q -f raw -F qcow2 "$T/s.raw" "$T/o.qcow2" || fail "convert -r -W copy differs"
at_least 1500 "convert -c -r 4M" "$VDK_IMG" convert -c -r 4M -f raw -O qcow2 "$T/s.raw" "$T/c.qcow2"
qimg compare -q -f raw -F qcow2 "$T/s.raw" "$T/c.qcow2" || fail "convert -c -r copy differs"
# 0 is no limit, as in qemu-img (no timing asserted either way).
"$VDK_IMG" convert -r 0 -f raw -O raw "$T/s.raw" "$T/o.raw" || fail "convert -r 0"

# commit: the 8 MiB top layer goes into its base at 4 MiB/s.
qimg create -q -f raw "$T/base.raw" 8M
qimg create -q -f qcow2 -b "$T/base.raw" -F raw "$T/top.qcow2"
qemu-io -f qcow2 -c 'write -P 0x77 0 8M' "$T/top.qcow2" >/dev/null
cp "$T/top.qcow2" "$T/ref.qcow2"
at_least 1500 "commit -r 4M" "$VDK_IMG" commit -r 4M "$T/top.qcow2"
qemu-io -f raw -c 'read -P 0x77 0 8M' "$T/base.raw" | grep -q 'read 8388608' ||
    fail "commit -r did not write the data into the base"
# -d keeps the top; a zero range allocated in the top is paid for as well.
qimg create -q -f raw "$T/base.raw" 8M
qemu-io -f raw -c 'write -P 0x11 0 8M' "$T/base.raw" >/dev/null
qimg create -q -f qcow2 -b "$T/base.raw" -F raw "$T/top.qcow2"
qemu-io -f qcow2 -c 'write -z 0 8M' "$T/top.qcow2" >/dev/null
at_least 1500 "commit -d -r 4M (zeros)" "$VDK_IMG" commit -d -r 4M "$T/top.qcow2"
qemu-io -f raw -c 'read -P 0 0 8M' "$T/base.raw" | grep -q 'read 8388608' ||
    fail "commit -r of zeros"

# Bad rates: qemu-img's messages and exit code, for both commands.
for cmd in "convert -f raw -O raw $T/s.raw $T/o.raw" "commit $T/ref.qcow2"; do
    for r in x -1 4Q 9E; do
        rc=0; qimg ${cmd%% *} -r "$r" ${cmd#* } 2>"$T/q.err" || rc=$?
        [ "$rc" -eq 1 ] || fail "qemu-img ${cmd%% *} -r $r: exit $rc"
        expect_fail "rate limit" "$VDK_IMG" ${cmd%% *} -r "$r" ${cmd#* }
        sed 's/^qemu-img:/vdk-img:/' "$T/q.err" | diff - "$T/.err" ||
            fail "${cmd%% *} -r $r: message differs from qemu-img's"
    done
done
"$VDK_IMG" convert --help | grep -q -- '-r rate_limit' || fail "convert --help lacks -r"
echo "rate limits: ok"
