#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every libFuzzer target for a given time each and print a table of
# runs, speed, coverage (cov/ft), corpus size and findings per target.
#
#   scripts/fuzz-campaign.sh [-j JOBS] [-t SECONDS] [SECONDS] [TARGET...]
#
#   -j JOBS     targets fuzzed at once (default 1); each takes one core, so
#               on an idle machine with C cores, -j C runs the whole
#               campaign in about (targets / C) * SECONDS plus the seeds
#               and the minimisation of each target
#   -t SECONDS  fuzzing time per target (default 600; a bare first number
#               is the same)
#
# Builds (or reuses) build-fuzz: CC=clang meson setup -Dfuzzing=true with
# AddressSanitizer and UBSan.  Each target starts from the seeds its
# generator (tests/fuzz/seeds/<target>.sh) makes now plus the corpus kept
# from earlier campaigns (fuzz-corpus/<target>, under the build dir), and
# ends with corpus minimisation (-merge=1) into that kept corpus.  Crash,
# leak, timeout (hang) and out-of-memory inputs land in
# fuzz-artifacts/<target>/ (emptied when the target's run starts).  The
# table counts them, and the sanitizer reports (ASan, LSan, UBSan) in the
# target's logs; any of these makes the script exit 1.  Columns: runs
# (inputs executed), exec/s, cov and ft (libFuzzer's edge and feature
# coverage at the end), corpus (files kept after minimisation), crash,
# hang, oom, leak (artifacts) and reports (sanitizer reports).  Needs an otherwise idle machine for
# meaningful figures: libFuzzer's speed is CPU bound.
set -eu
jobs=1 secs=600
while getopts "j:t:h" opt; do
    case $opt in
    j) jobs=$OPTARG ;;
    t) secs=$OPTARG ;;
    *) sed -n '3,13s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "-j wants a positive number" >&2; exit 2; }
[[ $secs =~ ^[1-9][0-9]*$ ]] || { echo "-t wants a positive number of seconds" >&2; exit 2; }
cd "$(dirname "$0")/.."
src=$PWD
bdir=${VDK_FUZZ_BUILD:-$src/build-fuzz}
if [ ! -f "$bdir/build.ninja" ]; then
    # No -Dwerror: clang warns where gcc (the -Dwerror=true compiler) does not.
    CC=clang meson setup "$bdir" -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
targets=("$@")
all=$(sed -n "s/^ *\['\(fuzz-[a-z0-9-]*\)'.*/\1/p" "$src/tests/fuzz/meson.build")
if [ ${#targets[@]} -eq 0 ]; then
    # Every target tests/fuzz/meson.build lists (seeds/ also holds sourced
    # helpers that are not targets).
    mapfile -t targets <<<"$all"
fi
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "no fuzz target $t" >&2; exit 2; }
done
# Only the fuzz targets (and what they link), and what seed generators
# take from the build (vdk-img, vdk-nbd, vhd-tool, the test guest).
ninja -C "$bdir" "${targets[@]/#/tests/fuzz/}" img-tool/vdk-img tests/unit/vhd/vhd-tool \
    nbd-server/vdk-nbd tests/guest/vdk-guest.elf tests/guest/vdk-guest.bzImage >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
rss=${VDK_FUZZ_RSS_MB:-4096}   # per target; -j N needs N times this
work=$bdir/fuzz-campaign
rm -rf "$work"
mkdir -p "$work"

# One target: seeds, fuzzing, minimisation; its table row goes to
# $work/$t.row (tab-separated), its progress to stderr.
run_target() {
    local t=$1
    local seeds=$work/$t-seeds corpus=$work/$t-corpus keep=$bdir/fuzz-corpus/$t
    local art=$bdir/fuzz-artifacts/$t log=$work/$t.log
    rm -rf "$art"   # this campaign's findings only
    mkdir -p "$seeds" "$corpus" "$keep" "$art"
    VDK_SRC=$src VDK_BUILD=$bdir "$src/tests/fuzz/seeds/$t.sh" "$seeds" >/dev/null 2>&1 ||
        echo "warning: seed generator of $t failed" >&2
    echo "$(date -u +%T) $t: fuzzing for ${secs}s" >&2
    # -fork keeps going after a crash so one bug does not hide the rest.
    "$bdir/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb="$rss" -artifact_prefix="$art/" -fork=1 -ignore_crashes=1 \
        -ignore_timeouts=1 -ignore_ooms=1 "$corpus" "$keep" "$seeds" >"$log" 2>&1 || true
    # Minimise into the kept corpus.
    mkdir -p "$work/$t-min"
    "$bdir/tests/fuzz/$t" -merge=1 -timeout=25 -rss_limit_mb="$rss" "$work/$t-min" "$keep" \
        "$corpus" "$seeds" >"$work/$t.merge.log" 2>&1 || true
    if [ -n "$(ls -A "$work/$t-min")" ]; then
        rm -rf "$keep"
        mv "$work/$t-min" "$keep"
    fi
    # Figures: the last status line of the run (total runs, cov, ft,
    # exec/s: no colon in fork mode) and the findings.
    local last runs cov ft eps crash hang oom leak san
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
    eps=$(sed -n 's/.*exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
    crash=$(find "$art" -type f -name 'crash-*' | wc -l)
    hang=$(find "$art" -type f \( -name 'timeout-*' -o -name 'slow-unit-*' \) | wc -l)
    oom=$(find "$art" -type f -name 'oom-*' | wc -l)
    leak=$(find "$art" -type f -name 'leak-*' | wc -l)
    # Fork mode copies a failing job's log into the main one.
    san=$(cat "$log" "$work/$t.merge.log" |
        grep -cE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:' ||
        true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${runs:-?}" "${eps:-?}" \
        "${cov:-?}" "${ft:-?}" "$(find "$keep" -type f | wc -l)" "$crash" "$hang" "$oom" \
        "$leak" "$san" >"$work/$t.row"
    echo "$(date -u +%T) $t: done" >&2
}

start=$(date +%s)
echo "$(date -u +%T) ${#targets[@]} targets, ${secs}s each, $jobs at a time;" \
    "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_target "$t" &
    running=$((running + 1))
done
wait || true

fmt='%-20s %11s %7s %6s %7s %7s %6s %5s %4s %5s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" target runs exec/s cov ft corpus crash hang oom leak reports
bad=0 total=0
for t in "${targets[@]}"; do
    if [ ! -f "$work/$t.row" ]; then
        # shellcheck disable=SC2059
        printf "$fmt" "$t" '?' '?' '?' '?' '?' '?' '?' '?' '?' 'no run'
        bad=1
        continue
    fi
    IFS=$'\t' read -r name runs eps cov ft ncorp crash hang oom leak san <"$work/$t.row"
    # shellcheck disable=SC2059
    printf "$fmt" "$name" "$runs" "$eps" "$cov" "$ft" "$ncorp" "$crash" "$hang" "$oom" "$leak" \
        "$san"
    [[ $runs =~ ^[0-9]+$ ]] && total=$((total + runs))
    [ "$crash$hang$oom$leak$san" = 00000 ] || bad=1
done
echo "total: $total runs in $(( $(date +%s) - start ))s wall time, $jobs job(s), ${secs}s per" \
    "target; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$bad" = 0 ] || { echo "crashes, hangs or sanitizer reports: see $bdir/fuzz-artifacts and $work/*.log" >&2; exit 1; }
