#!/bin/bash
# SPDX-License-Identifier: MIT
# Bitmaps stored on flush.  After an NBD FLUSH, with vdk-nbd still
# running, a SIGKILL leaves the bitmaps consistent (not in use): qemu-img
# info says so, qemu-img check is clean, and qemu-nbd -B serves the dirty
# map QEMU records for the same writes.  New writes after the flush and no
# flush leave them in use again, as QEMU leaves them; rewrites of chunks
# already dirty do not (the stored bitmap covers them).  Under concurrent
# writes and flushes, a bitmap that is not in use after the kill covers
# every sector whose data changed.  bitmap-store=close stores at close
# only (QEMU's rule); bitmap-store-ms postpones a store that comes soon
# after another, and the server does it by itself.  First, crash states replayed from write logs
# (tests/unit/qcow2/qcow2-bitmap-crash.c).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/bitmaps/common.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"

"$VDK_BUILD/tests/unit/qcow2/qcow2-bitmap-crash" "$T" || fail "bitmap crash replay"

# nbdw SOCK FLUSH OFF:LEN:BYTE...: writes through libnbd, then a flush if
# FLUSH is 1; the client leaves without one otherwise.
cat >"$T/w.py" <<'PY'
import nbd, sys
h = nbd.NBD()
h.connect_uri(sys.argv[1])
for spec in sys.argv[3:]:
    off, ln, b = (int(x) for x in spec.split(':'))
    h.pwrite(bytes([b]) * ln, off)
if sys.argv[2] == '1':
    h.flush()
h.shutdown()
PY
nbdw() { $PY "$T/w.py" "$(uri "$1")" "$2" "${@:3}" || fail "writes through vdk-nbd: ${*:3}"; }
# The same writes by qemu-io on the file; `sigraise 9` when $1 is kill.
qwrite() { # kill|close IMG OFF:LEN:BYTE...
    local how=$1 img=$2 a=() o l b spec rc=0
    shift 2
    for spec; do IFS=: read -r o l b <<<"$spec"; a+=(-c "write -P $b $o $l"); done
    [ "$how" = kill ] && a+=(-c 'sigraise 9')
    qemu-io -f qcow2 "${a[@]}" "$img" >/dev/null 2>&1 || rc=$?
    [ "$how" = kill ] || [ $rc -eq 0 ] || fail "qemu-io on $img"
}
kill_nbd() { kill -KILL "$NBD_PID"; wait "$NBD_PID" 2>/dev/null || true; NBD_PID=; }
mk() { # IMG: an enabled bitmap at 64 KiB and one at 4 KiB, a disabled one
    qemu-img create -q -f qcow2 "$1" 64M
    qemu-img bitmap --add "$1" on
    qemu-img bitmap --add -g 4k "$1" fine
    qemu-img bitmap --add --disable "$1" off
}
maps_same() { # what: the dirty maps of e (QEMU) and k (vdk) agree
    for m in on fine off; do same_dirty "$T/e.qcow2" "$T/k.qcow2" $m "$1"; done
}
check_rc() { # IMG: qemu-img check finds no corruption (leaks allowed)
    local rc=0
    qemu-img check "$1" >"$T/.check" 2>&1 || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$T/.check" >&2; fail "qemu-img check $1: $rc"; }
}

# 1. Writes, a flush, SIGKILL with vdk-nbd idle: stored, not in use.
mk "$T/k.qcow2"
cp "$T/k.qcow2" "$T/e.qcow2"
A=(0:65536:1 1048576:4096:2 5000000:70000:3 67108352:512:4)
start_nbd "$T/s" -t -f qcow2 "$T/k.qcow2"
nbdw "$T/s" 1 "${A[@]}"
kill_nbd
qwrite close "$T/e.qcow2" "${A[@]}"
b=$(binfo qemu-img "$T/k.qcow2")
case $b in *in-use*) fail "bitmaps in use after a flush and SIGKILL: $b";; esac
[ "$b" = "$(binfo qemu-img "$T/e.qcow2")" ] || fail "bitmaps differ from QEMU's: $b"
[ "$b" = "$(binfo "$VDK_IMG" "$T/k.qcow2")" ] || fail "vdk-img info differs: $b"
qemu_clean "$T/k.qcow2"
maps_same "a flush, then SIGKILL"
qemu-img compare -q "$T/e.qcow2" "$T/k.qcow2" || fail "the data differs"

# 2. A flush, then writes to chunks clean so far and no flush: in use
#    again, as QEMU leaves them after writes and a kill.
B=(20971520:4096:5 33554432:100000:6)
start_nbd "$T/s" -t -f qcow2 "$T/k.qcow2"
nbdw "$T/s" 1 "${A[@]}"
nbdw "$T/s" 0 "${B[@]}"
kill_nbd
cp "$T/e.qcow2" "$T/e2.qcow2"
qwrite kill "$T/e2.qcow2" "${B[@]}"
b=$(binfo qemu-img "$T/k.qcow2")
case $b in *'"in-use"'*'"in-use"'*'"in-use"'*) ;; *) fail "bitmaps not in use after new writes: $b";; esac
[ "$b" = "$(binfo qemu-img "$T/e2.qcow2")" ] || fail "bitmaps differ from QEMU's after a kill: $b"
[ "$b" = "$(binfo "$VDK_IMG" "$T/k.qcow2")" ] || fail "vdk-img info differs: $b"
check_rc "$T/k.qcow2"

# 3. A flush, then rewrites of chunks already dirty: still consistent.
mk "$T/k.qcow2"
cp "$T/k.qcow2" "$T/e.qcow2"
start_nbd "$T/s" -t -f qcow2 "$T/k.qcow2"
nbdw "$T/s" 1 "${A[@]}"
nbdw "$T/s" 0 0:4096:7 5000000:65536:8
kill_nbd
qwrite close "$T/e.qcow2" "${A[@]}" 0:4096:7 5000000:65536:8
b=$(binfo qemu-img "$T/k.qcow2")
case $b in *in-use*) fail "bitmaps in use after rewrites of dirty chunks: $b";; esac
qemu_clean "$T/k.qcow2"
maps_same "rewrites after a flush, then SIGKILL"
qemu-img compare -q "$T/e.qcow2" "$T/k.qcow2" || fail "the data differs after rewrites"

# 4. bitmap-store=close: a flush leaves them in use (QEMU's rule); a clean
#    exit stores them.
mk "$T/k.qcow2"
opts="driver=qcow2,file.filename=$T/k.qcow2,bitmap-store=close"
start_nbd "$T/s" -t --image-opts "$opts"
nbdw "$T/s" 1 "${A[@]}"
kill_nbd
case $(binfo qemu-img "$T/k.qcow2") in *'"in-use"'*'"in-use"'*'"in-use"'*) ;;
    *) fail "bitmap-store=close: stored on flush: $(binfo qemu-img "$T/k.qcow2")";; esac
mk "$T/k.qcow2"
start_nbd "$T/s" -t --image-opts "$opts"
nbdw "$T/s" 1 "${A[@]}"
stop_nbd
case $(binfo qemu-img "$T/k.qcow2") in *in-use*) fail "bitmap-store=close: not stored at exit";; esac
qemu_clean "$T/k.qcow2"
expect_fail "bitmap-store" "$VDK_IMG" info --image-opts "driver=qcow2,file.filename=$T/k.qcow2,bitmap-store=sometimes"
expect_fail "bitmap-store-ms" "$VDK_IMG" info --image-opts "driver=qcow2,file.filename=$T/k.qcow2,bitmap-store-ms=60001"

# 4b. Stores rate-limited (bitmap-store-ms): a flush soon after a store
#     leaves its store to the server's thread, which does it by itself
#     once the time has passed (no client, no flush, no exit): the
#     bitmaps are consistent while vdk-nbd still runs, a SIGKILL then
#     keeps them so, and the maps are QEMU's for the same writes.
mk "$T/k.qcow2"
cp "$T/k.qcow2" "$T/e.qcow2"
start_nbd "$T/s" -t --image-opts "driver=qcow2,file.filename=$T/k.qcow2,bitmap-store-ms=2000"
nbdw "$T/s" 1 "${A[@]}"
nbdw "$T/s" 1 "${B[@]}"
i=0
while case $(binfo qemu-img "$T/k.qcow2") in *in-use*) true;; *) false;; esac; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "bitmap-store-ms: the postponed store never came"
    sleep 0.1
done
kill_nbd
qwrite close "$T/e.qcow2" "${A[@]}" "${B[@]}"
[ "$(binfo qemu-img "$T/k.qcow2")" = "$(binfo qemu-img "$T/e.qcow2")" ] ||
    fail "bitmap-store-ms: bitmaps differ from QEMU's"
qemu_clean "$T/k.qcow2"
maps_same "a postponed store, then SIGKILL"

# 5. Concurrent writes (16 in flight) with a flush every few requests,
#    killed at a different moment each round.  Whenever the kill leaves
#    the bitmaps consistent, every sector whose data changed is dirty in
#    both enabled bitmaps; the image never has corruptions.
cat >"$T/race.py" <<'PY'
import nbd, os, random, sys
random.seed(int(sys.argv[2]))
h = nbd.NBD()
h.connect_uri(sys.argv[1])
size = h.get_size()
pending = {}  # cookie -> buffer, alive until the reply
# The region dirty first, so that later flushes often find nothing new.
for off in range(0, 4 << 20, 1 << 20):
    h.pwrite(os.urandom(1 << 20), off)
n = 0
while True:
    while h.aio_in_flight() < 16:
        n += 1
        if n % 12 == 0:
            pending[h.aio_flush()] = None
            continue
        ln = random.choice((512, 4096, 65536, 131072, random.randrange(1, 200000)))
        # Mostly that region, sometimes new chunks anywhere.
        top = 4 << 20 if random.random() < 0.99 else size
        off = random.randrange(0, top - ln)
        b = nbd.Buffer.from_bytearray(bytearray(os.urandom(ln)))
        pending[h.aio_pwrite(b, off)] = b
    h.poll(-1)
    for c in list(pending):
        if h.aio_command_completed(c):
            del pending[c]
PY
cat >"$T/cover.py" <<'PY'
import sys
# cover.py RAW MAP...: every 512-byte sector of RAW that is not zero lies
# in a dirty extent of each nbdinfo --map listing.
raw = open(sys.argv[1], 'rb').read()
for m in sys.argv[2:]:
    dirty = []
    for line in open(m):
        f = line.split()
        if len(f) >= 3 and int(f[2]) & 1:
            dirty.append((int(f[0]), int(f[0]) + int(f[1])))
    dirty.sort()
    zero = bytes(512)
    i = 0
    for s in range(0, len(raw), 512):
        if raw[s:s + 512] == zero:
            continue
        while i < len(dirty) and dirty[i][1] <= s:
            i += 1
        if i == len(dirty) or dirty[i][0] > s:
            sys.exit("%s: sector at %d changed but is clean" % (m, s))
PY
clean_rounds=0
for round in 1 2 3 4 5 6; do
    mk "$T/r.qcow2"
    start_nbd "$T/s" -t -f qcow2 "$T/r.qcow2"
    $PY "$T/race.py" "$(uri "$T/s")" "$round" 2>/dev/null &
    wpid=$!
    sleep "$((round * 3 / 10)).$((round * 3 % 10))"   # 0.3 s to 1.8 s
    kill_nbd
    wait $wpid 2>/dev/null || true
    check_rc "$T/r.qcow2"
    b=$(binfo qemu-img "$T/r.qcow2")
    [ "$b" = "$(binfo "$VDK_IMG" "$T/r.qcow2")" ] || fail "info differs after the kill: $b"
    case $b in *in-use*) continue;; esac
    clean_rounds=$((clean_rounds + 1))
    qemu-img convert -U -f qcow2 -O raw "$T/r.qcow2" "$T/r.raw"
    qmap "$T/r.qcow2" on >"$T/m.on" && qmap "$T/r.qcow2" fine >"$T/m.fine" ||
        fail "qemu-nbd -B on the killed image"
    $PY "$T/cover.py" "$T/r.raw" "$T/m.on" "$T/m.fine" || fail "round $round: stale bitmap"
done
echo "concurrent rounds left consistent by the kill: $clean_rounds of 6" >&2
echo ok
