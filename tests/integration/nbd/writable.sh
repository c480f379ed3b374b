#!/bin/bash
# SPDX-License-Identifier: MIT
# Which exports take writes: an export is writable unless it says
# readonly=on or the daemon runs with -r.  Every combination of the two,
# with probed raw, explicit raw and qcow2 images side by side in one
# daemon, checked with nbdinfo (what the server advertises) and qemu-io
# (what a write does).  A probed raw export takes ordinary data in its
# first sector as qemu-nbd does; only a write that would make it probe
# as another format is refused.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock

# check EXPORT WANT(rw|ro)
check() {
    local e=$1 want=$2 ro
    ro=$(nbdinfo --json "$(uri "$S" "$e")" | $PY -c \
        'import json,sys; print(json.load(sys.stdin)["exports"][0]["is_read_only"])')
    local w=0
    qemu-io -f raw "$(uri "$S" "$e")" -c 'write -P 0x66 0 1M' -c 'write -P 0x67 3M 4k' \
        >"$T/qio.out" 2>&1 || w=1
    grep -q 'failed' "$T/qio.out" && w=1
    if [ "$want" = rw ]; then
        [ "$ro" = False ] || fail "$e ($CASE): advertised read-only"
        [ "$w" = 0 ] || { cat "$T/qio.out" >&2; fail "$e ($CASE): write refused"; }
        qemu-io -f raw "$(uri "$S" "$e")" -c 'read -P 0x66 0 1M' -c 'read -P 0x67 3M 4k' \
            >"$T/qio.out" 2>&1 || { cat "$T/qio.out" >&2; fail "$e ($CASE): no read-back"; }
        grep -q 'failed\|mismatch' "$T/qio.out" && { cat "$T/qio.out" >&2;
            fail "$e ($CASE): read-back differs"; }
    else
        [ "$ro" = True ] || fail "$e ($CASE): advertised writable"
        [ "$w" = 1 ] || fail "$e ($CASE): write accepted"
    fi
    return 0
}

fresh() {
    qimg create -f raw "$T/a.raw" 4M >/dev/null
    qimg create -f raw "$T/r.raw" 4M >/dev/null
    qimg create -f qcow2 "$T/b.qcow2" 4M >/dev/null
    qimg create -f raw "$T/g.raw" 4M >/dev/null
}

for dash_r in "" -r; do
    for ro_a in off on; do
        for ro_b in off on; do
            CASE="${dash_r:-no -r}, alpha readonly=$ro_a, beta readonly=$ro_b"
            fresh
            start_nbd "$S" -t $dash_r \
                --export "name=alpha,file=$T/a.raw,readonly=$ro_a" \
                --export "name=raw,file=$T/r.raw,format=raw" \
                --export "name=beta,file=$T/b.qcow2,format=qcow2,readonly=$ro_b" \
                --export "name=gamma,file=$T/g.raw,readonly=on"
            want() { [ -z "$dash_r" ] && [ "$1" = off ] && echo rw || echo ro; }
            check alpha "$(want "$ro_a")"
            check raw "$(want off)"
            check beta "$(want "$ro_b")"
            check gamma ro
            stop_nbd
            qimg check -q "$T/b.qcow2" || fail "$CASE: qcow2 export damaged"
            if [ "$(want "$ro_a")" = rw ] && [ "$(want "$ro_b")" = rw ]; then
                qimg compare -q -f raw -F qcow2 "$T/a.raw" "$T/b.qcow2" ||
                    fail "$CASE: alpha and beta differ"
            fi
        done
    done
done

# The single-FILE form, with and without -r.
for dash_r in "" -r; do
    CASE="FILE ${dash_r:-without -r}"
    fresh
    start_nbd "$S" -t $dash_r -x one "$T/a.raw"
    check one "$([ -z "$dash_r" ] && echo rw || echo ro)"
    stop_nbd
done

# Probed raw: a first sector that would turn the image into a qcow2 is
# refused (EPERM), as qemu-nbd refuses it; the data stays raw.
fresh
qimg create -f qcow2 "$T/hdr.qcow2" 1M >/dev/null
head -c 512 "$T/hdr.qcow2" >"$T/hdr.bin"
start_nbd "$S" -t --export "name=alpha,file=$T/a.raw"
$PY - "$(uri "$S" alpha)" "$T/hdr.bin" <<'PYEOF' || fail "probed raw sector 0"
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
hdr = open(sys.argv[2], "rb").read()
try:
    h.pwrite(hdr, 0)
    sys.exit("a qcow2 header was written over a probed raw image")
except nbd.Error as e:
    assert e.errno == "EPERM", e
h.pwrite(b"\x66" * 512, 0)
assert h.pread(512, 0) == b"\x66" * 512
h.shutdown()
PYEOF
stop_nbd
[ "$(qimg info --output=json "$T/a.raw" | $PY -c 'import json,sys; print(json.load(sys.stdin)["format"])')" = raw ] ||
    fail "probed raw image no longer probes as raw"
echo "writable: ok"
