#!/bin/bash
# SPDX-License-Identifier: MIT
# Image locks against the real holders (qemu-io, qemu-nbd, vdk-nbd writing
# an image): vdk-img info refuses a qcow2 or VHD that another process
# writes, with qemu-img's words, exactly where qemu-img info refuses, and
# -U opens it; raw under a writer is described, as by qemu-img; vdk-nbd's
# refusal names no option it lacks.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
cd "$T"
holder=
trap 'if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
      if [ -n "$NBD_PID" ]; then kill -KILL "$NBD_PID" 2>/dev/null || true; fi
      rm -rf "$T"' EXIT

wait_for() { # FILE REGEX: until the holder's output shows it is ready
    local i=0
    until grep -q "$2" "$1" 2>/dev/null; do
        kill -0 "$holder" 2>/dev/null || { cat "$1" >&2; fail "holder exited"; }
        i=$((i + 1)); [ "$i" -lt 600 ] || fail "holder did not open the image"
        sleep 0.05
    done
}
stop_holder() { kill "$holder"; wait "$holder" 2>/dev/null || true; holder=; }

# refused IMG: info without -U fails as qemu-img's does; -U works.
refused() {
    same_error "info of $1 in use" info "$1"
    same_error "info json of $1 in use" info --output=json "$1"
    same_error "info -f of $1 in use" info -f "$2" "$1"
    grep -q 'Failed to get shared "write" lock' "$T/.ve" || fail "wording"
    grep -qx "Is another process using the image \[$1\]?" "$T/.ve" || fail "wording (hint)"
    same_output "info -U of $1 in use" info -U --output=json "$1"
    expect_fail 'Failed to get shared "write" lock' "$VDK_IMG" map "$1"
    "$VDK_IMG" map -U "$1" >/dev/null || fail "map -U of $1 in use"
}

qimg create -q -f qcow2 q.qcow2 4M
qimg create -q -f vpc v.vhd 4M
qimg create -q -f raw r.raw 4M

# qemu-io writing (interactive: it holds the image until its stdin ends).
for spec in "qcow2 q.qcow2" "vpc v.vhd"; do
    set -- $spec
    mkfifo ctl
    qemu-io -f "$1" "$2" <ctl >io.out 2>&1 &
    holder=$!
    exec 3>ctl
    echo 'write -P 5 0 4k' >&3
    wait_for io.out 'wrote 4096/4096'
    refused "$2" "$1"
    exec 3>&-
    wait "$holder" || true
    holder=
    rm -f ctl
done

# qemu-nbd and vdk-nbd exporting writable.
qemu-nbd -f qcow2 -k "$T/q.sock" q.qcow2 2>nbd-q.log &
holder=$!
i=0; until [ -S "$T/q.sock" ]; do i=$((i + 1)); [ "$i" -lt 600 ] || fail "qemu-nbd"; sleep 0.05; done
refused q.qcow2 qcow2
stop_holder
start_nbd "$T/v.sock" -f qcow2 q.qcow2
refused q.qcow2 qcow2
# A second vdk-nbd on the same image gets qemu-nbd's words, and no hint
# about an option vdk-nbd does not have.
rc=0; "$VDK_NBD" -f qcow2 -k "$T/v2.sock" q.qcow2 2>v2.err || rc=$?
[ "$rc" -ne 0 ] || fail "second vdk-nbd started on an image in use"
grep -q 'Failed to get "write" lock' v2.err || { cat v2.err; fail "vdk-nbd wording"; }
grep -q 'Is another process using the image \[q.qcow2\]?' v2.err || fail "vdk-nbd hint"
! grep -q -- '-U' v2.err || { cat v2.err; fail "vdk-nbd suggests -U, which it lacks"; }
stop_nbd

# raw under a writer: qemu-img info describes it, and so does vdk-img.
qemu-nbd -f raw -k "$T/r.sock" r.raw 2>nbd-r.log &
holder=$!
i=0; until [ -S "$T/r.sock" ]; do i=$((i + 1)); [ "$i" -lt 600 ] || fail "qemu-nbd"; sleep 0.05; done
same_output "info of raw in use" info --output=json r.raw
same_output "info -f raw of raw in use" info -f raw r.raw
stop_holder

# Nothing holds it any more: info works again without -U.
same_output "info after the holders" info --output=json q.qcow2
echo ok
