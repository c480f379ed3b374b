#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGKILL of vdk-nbd during writes (and no flush since the open) with
# enabled bitmaps: qemu-img info and check agree with vdk-img about the
# bitmaps (in use: inconsistent) and the image; check -r leaves them as qemu-img's does; an inconsistent bitmap is
# refused by vdk-nbd -B and every bitmap operation but --remove, as QEMU.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/bitmaps/common.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"

same_out() { # what, then the command both tools run
    local what=$1; shift
    "$VDK_IMG" "$@" >"$T/.v" 2>&1 || true
    qemu-img "$@" >"$T/.q" 2>&1 || true
    sed -i 's/^vdk-img:/qemu-img:/' "$T/.v"
    cmp -s "$T/.v" "$T/.q" || { diff "$T/.q" "$T/.v" >&2; fail "$what differs from qemu-img"; }
}

# Writes through libnbd without a flush (qemu-io would flush at its end,
# and a flush stores the bitmaps: see flush.sh).
cat >"$T/wr.py" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for i in range(1, 401):
    h.pwrite(bytes([i % 200]) * 196608, (i * 7919 % 1000) * 65536)
PY
for round in 1 2 3 4; do
    qemu-img create -q -f qcow2 "$T/k.qcow2" 64M
    qemu-img bitmap --add "$T/k.qcow2" on
    qemu-img bitmap --add -g 4k --disable "$T/k.qcow2" off
    retry_setup qemu-io -f qcow2 -c 'write 0 1M' "$T/k.qcow2" >/dev/null
    qemu-img bitmap --enable "$T/k.qcow2" off
    qemu-img bitmap --merge on "$T/k.qcow2" off
    qemu-img bitmap --disable "$T/k.qcow2" off
    start_nbd "$T/s" -t -f qcow2 "$T/k.qcow2"
    # Writes run until the kill; the moment varies with the round.
    $PY "$T/wr.py" "$(uri "$T/s")" >/dev/null 2>&1 &
    wpid=$!
    sleep "0.$((round * 2))"
    kill -KILL "$NBD_PID"; wait "$NBD_PID" 2>/dev/null || true; NBD_PID=
    wait $wpid 2>/dev/null || true
    # Both bitmaps are in use on disk: inconsistent for both tools.
    b=$(binfo qemu-img "$T/k.qcow2")
    [ "$b" = "$(binfo "$VDK_IMG" "$T/k.qcow2")" ] || fail "info differs: $b"
    case $b in *'"in-use"'*'"in-use"'*) ;; *) fail "bitmaps not in use after the kill: $b";; esac
    same_out "check after kill" check "$T/k.qcow2"
    same_out "check json after kill" check --output=json "$T/k.qcow2"
    # check -r all on twins: the same report and the same bitmaps after.
    cp "$T/k.qcow2" "$T/k2.qcow2"
    "$VDK_IMG" check -r all "$T/k.qcow2" >"$T/.rv" 2>&1 || true
    qemu-img check -r all "$T/k2.qcow2" >"$T/.rq" 2>&1 || true
    cmp -s "$T/.rv" "$T/.rq" || { diff "$T/.rq" "$T/.rv" >&2; fail "check -r all differs"; }
    [ "$(binfo qemu-img "$T/k.qcow2")" = "$(binfo qemu-img "$T/k2.qcow2")" ] ||
        fail "bitmaps differ after check -r all"
    qemu_clean "$T/k.qcow2"
done

# An inconsistent bitmap: no NBD export, no operation but remove, no
# resize; a read-write open keeps it as it is beside the others.
qemu-nbd -r -f qcow2 -B on -k "$T/q" "$T/k.qcow2" 2>"$T/.q" && fail "qemu-nbd exports it"
expect_fail "Bitmap 'on' is inconsistent and cannot be used" \
    "$VDK_NBD" -r -f qcow2 -B on -k "$T/x" "$T/k.qcow2"
for op in --clear --enable --disable "--merge off"; do
    expect_fail "Operation .* failed: Bitmap '(on|off)' is inconsistent" \
        "$VDK_IMG" bitmap $op "$T/k.qcow2" on
done
expect_fail "Bitmap 'on' is inconsistent" "$VDK_IMG" resize "$T/k.qcow2" 128M
"$VDK_IMG" bitmap --add "$T/k.qcow2" fresh
start_nbd "$T/s" -t -f qcow2 "$T/k.qcow2"
qemu-io -f raw -c 'write 5M 64k' "$(uri "$T/s")" >/dev/null
stop_nbd
[ "$(binfo qemu-img "$T/k.qcow2")" = "$(binfo "$VDK_IMG" "$T/k.qcow2")" ] || fail "info differs"
case $(binfo qemu-img "$T/k.qcow2") in
    *'"in-use"'*'"in-use"'*'{"flags": ["auto"], "granularity": 65536, "name": "fresh"}'*) ;;
    *) fail "bitmaps after a clean session: $(binfo qemu-img "$T/k.qcow2")";;
esac
[ "$(qmap "$T/k.qcow2" fresh | grep dirty)" = "   5242880       65536    1  dirty" ] ||
    fail "fresh bitmap map: $(qmap "$T/k.qcow2" fresh)"
"$VDK_IMG" bitmap --remove "$T/k.qcow2" on
"$VDK_IMG" bitmap --remove "$T/k.qcow2" off
qemu_clean "$T/k.qcow2"
[ "$(binfo qemu-img "$T/k.qcow2")" = '[{"flags": ["auto"], "granularity": 65536, "name": "fresh"}]' ] ||
    fail "after remove: $(binfo qemu-img "$T/k.qcow2")"
# Lazy refcounts: a crash leaves stale refcounts that vdk rebuilds at the
# next read-write open, counting the bitmaps' directory, tables and data.
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$T/lz.qcow2" 64M
qemu-img bitmap --add -g 4k "$T/lz.qcow2" b0
retry_setup qemu-io -f qcow2 -c 'write 0 1M' -c 'write 5M 64k' "$T/lz.qcow2" >/dev/null
qemu-io -f qcow2 -c 'write 10M 64k' -c 'sigraise 9' "$T/lz.qcow2" >/dev/null 2>&1 || true
"$VDK_IMG" bitmap --add "$T/lz.qcow2" b1 2>"$T/.lz" || { cat "$T/.lz" >&2; fail "open after a lazy crash"; }
qemu_clean "$T/lz.qcow2"
qemu-img bitmap --remove "$T/lz.qcow2" b0
"$VDK_IMG" bitmap --add "$T/lz.qcow2" b2
qemu_clean "$T/lz.qcow2"
echo ok
