#!/bin/bash
# SPDX-License-Identifier: MIT
# Crash consistency of `vdk-img convert -n` into an existing qcow2: the
# process is killed with SIGKILL at many deterministic points (strace
# delivers SIGKILL on entry to the Nth pwrite64, so writes 1..N-1 reached
# the file and write N did not; likewise on the Nth fallocate, with which
# new clusters get their unwritten parts zeroed), and at a few random
# moments.  Every kill
# leaves an image that
#   - qemu-img check and vdk-img check find free of corruption (leaks
#     allowed) and agree on, leak count included;
#   - qemu-img and vdk-img both read, identically;
#   - shows in every 512-byte sector either the old guest content or the
#     source's (tests/integration/qcow2/old-or-new.py);
#   - vdk-img check -r leaks repairs so that qemu-img check is clean;
#   - a second, complete convert -n turns into a copy of the source.
# Variants: 64 KiB clusters (in-place overwrites, new allocations, zeroed
# ranges freeing clusters), 512 B clusters with 64-bit refcounts (the
# refcount table grows; extra kill points on the writes around every
# header update), -c (compressed clusters replacing allocated ones), a
# target with a backing file and a qcow2 source, a target with an internal
# snapshot (which must keep its content), and 8 workers (-m 8, qemu-img's
# default; vdk-img's is two per CPU)
# (kill points counted per thread by strace, plus random-time kill -9).
# Single-worker variants (-m 1) write in a fixed order, so their points
# are exact and reproducible.
#
# KILL_POINTS (default 30) sets the evenly spread strace kill points of the
# cheaper single-worker variants; the dearer ones take a fraction of it.
. "$(dirname "$0")/common.sh"
command -v strace >/dev/null || fail "strace is not installed (scripts/test.sh installs it)"
PY=/usr/bin/python3
ONO="$VDK_SRC/tests/integration/qcow2/old-or-new.py"
POINTS=${KILL_POINTS:-30}
# LeakSanitizer cannot run under ptrace; a killed run never reaches it anyway.
NOLEAK="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
SYSCALLS=pwrite64,pwritev,pwritev2,fallocate,ftruncate,fdatasync,fsync
total_points=0 THREADS=0 SNAP=0

# The source: holes, explicit zeros, fill patterns, random data, and a
# partial-cluster run, laid over the target's old data so that the
# convert overwrites clusters in place, allocates new ones and zeroes
# (frees) others.  Raw; $2 = qcow2 turns it into a sparse qcow2.
make_source() {
    local out=$1 fmt=$2
    /usr/bin/python3 - "$T/src.tmp" <<'PY'
import random, sys
M = 1 << 20
r = random.Random(7)
with open(sys.argv[1], "wb") as f:
    f.truncate(8 * M)
    for off, data in ((M // 4, b"\xaa" * (5 * M // 4)),
                      (2 * M, r.randbytes(M // 2)),
                      (5 * M // 2, b"\xbb" * (2 * M)),
                      (9 * M // 2 + 4096, bytes(M // 2)), # explicit zeros
                      (6 * M + 512, b"\xcc" * 1536),      # partial cluster
                      (13 * M // 2, r.randbytes(M // 4) + bytes(64 * 1024)
                       + r.randbytes(M // 4))):
        f.seek(off)
        f.write(data)
PY
    if [ "$fmt" = qcow2 ]; then
        qemu-img convert -f raw -O qcow2 "$T/src.tmp" "$out" || fail "making the qcow2 source"
        rm -f "$T/src.tmp"
    else
        mv "$T/src.tmp" "$out"
    fi
}

# The existing target, written by qemu-io: data where the source has holes,
# zeros and data, a zero-flagged range and an unallocated gap.
make_target() {
    local out=$1 opts=$2 backing=$3
    local b=()
    [ -z "$backing" ] || b=(-b "$backing" -F qcow2)
    qemu-img create -q -f qcow2 -o "$opts" "${b[@]}" "$out" 8M ||
        fail "qemu-img create $out"
    # Less old data with small clusters: the file then starts with a
    # one-cluster refcount table, which the convert has to grow.
    local big=3M mid=1M
    case $opts in cluster_size=512,*) big=512k mid=512k ;; esac
    qio -c "write -P 0x11 0 $big" -c "write -P 0x12 4M $mid" -c 'write -z 5M 512k' \
        -c "write -P 0x13 6M $mid" -c 'discard 6M 64k' -c 'write -P 0x14 7680k 256k' "$out"
    # SNAP=1: an internal snapshot shares every cluster, so the convert
    # copies L2 tables and data on write and drops the old references.
    [ "$SNAP" = 0 ] || qemu-img snapshot -c s1 "$out" || fail "qemu-img snapshot -c $out"
}

# snap_intact IMG WHAT: with SNAP=1, the snapshot still reads as the old
# guest content.
snap_intact() {
    [ "$SNAP" = 1 ] || return 0
    qemu-img convert -l snapshot.name=s1 -O raw "$1" "$T/snap.raw" ||
        fail "$2: qemu-img cannot read snapshot s1"
    cmp -s "$T/snap.raw" "$T/old.raw" || fail "$2: snapshot s1 changed"
}

# guest_raw IMG OUT: the guest view through qemu-img.
guest_raw() { qemu-img convert -O raw "$1" "$2" || fail "qemu-img cannot read $1"; }

# check_json TOOL IMG: "rc errors leaks" of TOOL check --output=json.
check_json() {
    local rc=0 out
    out=$("$@" 2>&1) || rc=$?
    local errs leaks
    errs=$(printf '%s\n' "$out" | sed -n 's/.*"check-errors": \([0-9]*\).*/\1/p')
    leaks=$(printf '%s\n' "$out" | sed -n 's/.*"leaks": \([0-9]*\).*/\1/p')
    echo "$rc ${errs:-?} ${leaks:-0}"
}

# verify IMG WHAT: everything the header promises about a killed image.
# Uses $SRC, $SRCFMT, $CVT (convert options) and $T/old.raw, $T/new.raw.
verify() {
    local img=$1 what=$2 q v
    q=$(check_json qemu-img check --output=json "$img")
    v=$(check_json "$VDK_IMG" check --output=json "$img")
    case $q in
    "0 0 0" | "3 0 "*) ;;
    *) qemu-img check "$img" >&2 || true; fail "$what: qemu-img check: $q (rc errors leaks)" ;;
    esac
    [ "$q" = "$v" ] || fail "$what: qemu-img check says '$q', vdk-img check '$v'"
    guest_raw "$img" "$T/got.raw"
    "$VDK_IMG" convert -O raw "$img" "$T/vdk.raw" || fail "$what: vdk-img cannot read it"
    $PY "$ONO" "$T/old.raw" "$T/new.raw" "$T/got.raw" "$T/vdk.raw" >"$T/ono" ||
        fail "$what: torn content, or vdk-img and qemu-img read it differently"
    echo "$what: sectors only $(cat "$T/ono"), check $q"
    snap_intact "$img" "$what"
    "$VDK_IMG" check -q -r leaks "$img" >/dev/null 2>&1 || fail "$what: vdk-img check -r leaks"
    qemu-img check -q "$img" || fail "$what: not clean after vdk-img check -r leaks"
    "$VDK_IMG" convert -n $CVT -f "$SRCFMT" -O qcow2 "$SRC" "$img" ||
        fail "$what: convert -n after the kill"
    qemu-img compare -q -F qcow2 -f "$SRCFMT" "$SRC" "$img" ||
        fail "$what: image differs from the source after a complete convert -n"
    snap_intact "$img" "$what, completed"
    total_points=$((total_points + 1))
}

# strace_run N IMG [SYSCALL]: convert into IMG, SIGKILLed on entry to the
# Nth pwrite64 (or SYSCALL) of a thread.  Fails unless it was really killed.
strace_run() {
    local n=$1 img=$2 sc=${3:-pwrite64} rc=0
    # (The braces keep bash's "Killed" notice out of the log.)
    { ASAN_OPTIONS=$NOLEAK strace -f -qq -o /dev/null -e trace=$SYSCALLS \
        -e inject="$sc":signal=SIGKILL:when="$n" \
        "$VDK_IMG" convert -n $CVT -f "$SRCFMT" -O qcow2 "$SRC" "$img"; } 2>/dev/null || rc=$?
    # With several workers a thread's share of the writes varies from run
    # to run, so a late point may not be reached: the run then completes.
    [ "$rc" = 137 ] || { [ "$rc" = 0 ] && [ "$THREADS" = 1 ]; } ||
        fail "$VARIANT: write $n: convert was not killed (exit $rc)"
}

# count_writes IMG: the most pwrite64 calls a thread of a complete convert
# makes (strace's injection counter is per thread); the most fallocate
# calls go to $T/falloc.  Also checks that no other write-type syscall is
# used, which the kill points would miss, and lists in $T/header the
# thread-local numbers of the writes to the header fields (refcount-table
# growth, L1 moves).
count_writes() {
    local img=$1
    ASAN_OPTIONS=$NOLEAK strace -f -qq -o "$T/trace" -e trace=$SYSCALLS \
        "$VDK_IMG" convert -n $CVT -f "$SRCFMT" -O qcow2 "$SRC" "$img" ||
        fail "$VARIANT: convert under strace"
    # (Threads' calls overlap: strace splits them into "pwrite64(...
    # <unfinished ...>" and "<... pwrite64 resumed>" lines.)
    local ok='^[0-9]+ +((pwrite64|fallocate)\(|<\.\.\. (pwrite64|fallocate) resumed>)|\+\+\+ exited'
    if grep -vE "$ok" "$T/trace" | grep -q .; then
        grep -vE "$ok" "$T/trace" | head -3 >&2
        fail "$VARIANT: convert uses write syscalls this test does not kill at"
    fi
    awk -v hdr="$T/header" '$2 ~ /^pwrite64\(/ {
            c[$1]++
            if (match($0, /, [0-9]+(\) += | <unfinished)/) && substr($0, RSTART + 2) + 0 < 104)
                print c[$1] >hdr
        }
        END { m = 0; for (t in c) if (c[t] > m) m = c[t]; print m }' "$T/trace"
    awk '$2 ~ /^fallocate\(/ { c[$1]++ }
        END { m = 0; for (t in c) if (c[t] > m) m = c[t]; print m }' "$T/trace" >"$T/falloc"
}

# variant NAME CREATE-OPTIONS BACKING(0/1) SRCFMT POINTS RANDOM CONVERT-OPTIONS...
variant() {
    VARIANT=$1
    local opts=$2 back=$3 points=$5 random=$6 backing=
    SRCFMT=$4
    shift 6
    CVT="$*"
    SRC=$T/src.$SRCFMT
    [ -e "$SRC" ] || make_source "$SRC" "$SRCFMT"
    if [ "$back" = 1 ]; then
        backing=$T/back.qcow2
        qemu-img create -q -f qcow2 "$backing" 8M
        qio -c 'write -P 0x33 0 8M' -c 'write -z 3M 512k' "$backing"
    fi
    make_target "$T/base.qcow2" "$opts" "$backing"
    guest_raw "$T/base.qcow2" "$T/old.raw"
    guest_raw "$SRC" "$T/new.raw"
    cp "$T/base.qcow2" "$T/k.qcow2"
    local max
    : >"$T/header"
    max=$(count_writes "$T/k.qcow2")
    qemu-img compare -q -F qcow2 -f "$SRCFMT" "$SRC" "$T/k.qcow2" ||
        fail "$VARIANT: complete convert -n differs from the source"
    [ "$max" -ge 2 ] || fail "$VARIANT: only $max writes"
    # Points spread evenly over 1..max, both ends included, and (one
    # thread) the three writes either side of each header update.
    local i n h done=0
    for ((i = 0; i < points; i++)); do
        echo $((1 + i * (max - 1) / (points > 1 ? points - 1 : 1)))
    done >"$T/points"
    if [ "$THREADS" = 0 ]; then
        while read -r h; do
            for ((n = h - 3; n <= h + 3; n++)); do
                [ "$n" -lt 1 ] || [ "$n" -gt "$max" ] || echo "$n"
            done
        done <"$T/header" >>"$T/points"
    fi
    for n in $(sort -n -u "$T/points"); do
        cp "$T/base.qcow2" "$T/k.qcow2"
        strace_run "$n" "$T/k.qcow2"
        verify "$T/k.qcow2" "$VARIANT: killed at write $n of $max"
        done=$((done + 1))
    done
    # A few points on the fallocate calls too (one worker: exact).
    local fmax fpoints
    fmax=$(cat "$T/falloc")
    fpoints=$((points / 3 > 0 ? points / 3 : 1))
    if [ "$THREADS" = 0 ] && [ "$fmax" -gt 0 ]; then
        for ((i = 0; i < fpoints; i++)); do
            echo $((1 + i * (fmax - 1) / (fpoints > 1 ? fpoints - 1 : 1)))
        done >"$T/fpoints"
        for n in $(sort -n -u "$T/fpoints"); do
            cp "$T/base.qcow2" "$T/k.qcow2"
            strace_run "$n" "$T/k.qcow2" fallocate
            verify "$T/k.qcow2" "$VARIANT: killed at fallocate $n of $fmax"
            done=$((done + 1))
        done
    fi
    # Random moments: the run is timed once, then killed at a random
    # fraction of that time (a run that finishes first is checked too).
    local t0 t1 us pid
    for ((i = 0; i < random; i++)); do
        cp "$T/base.qcow2" "$T/k.qcow2"
        t0=$(date +%s%N)
        "$VDK_IMG" convert -n $CVT -f "$SRCFMT" -O qcow2 "$SRC" "$T/k.qcow2" &
        pid=$!
        if [ "$i" = 0 ]; then
            wait "$pid" || fail "$VARIANT: timing run"
            t1=$(date +%s%N)
            us=$(((t1 - t0) / 1000))
            continue
        fi
        sleep "$(awk -v us="$us" -v r="$RANDOM" 'BEGIN { printf "%.6f", us * r / 32768 / 1e6 }')"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        verify "$T/k.qcow2" "$VARIANT: random kill $i"
        done=$((done + 1))
    done
    echo "$VARIANT: $max writes and $fmax fallocates per thread at most," \
        "$done kill points checked (${SECONDS}s so far)"
}

variant c64k cluster_size=64k 0 raw "$POINTS" 0 -m 1
# 64-bit refcounts with 512 B clusters: one refcount-table cluster covers
# 2 MiB of file, so the table grows (twice) during the convert.  Its
# thousands of writes make each point dear: fewer even points here, plus
# the ones around each growth.
variant c512 cluster_size=512,refcount_bits=64 0 raw $((POINTS / 2)) 0 -m 1
# The refcount table must have grown (its cluster count: header offset 56).
rt() { od -An -tu1 -j56 -N4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }
[ "$(rt "$T/k.qcow2")" -gt "$(rt "$T/base.qcow2")" ] ||
    fail "c512: the refcount table did not grow; the variant lost its point"
# Compression makes each re-run dear too.
variant compressed cluster_size=64k 0 raw $((POINTS * 2 / 3)) 0 -c -m 1
variant backing cluster_size=64k 1 qcow2 "$POINTS" 0 -m 1
SNAP=1 variant snapshot cluster_size=64k 0 raw $((POINTS * 2 / 3)) 0 -m 1
THREADS=1 variant threads cluster_size=64k 0 raw 8 6 -m 8
echo "kill-convert: $total_points killed images verified"
