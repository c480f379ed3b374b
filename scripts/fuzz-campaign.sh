#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every libFuzzer target for a given time each and print a table of
# runs, coverage (cov/ft), corpus size and crashes.
#
#   scripts/fuzz-campaign.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Builds (or reuses) build-fuzz: CC=clang meson setup -Dfuzzing=true with
# AddressSanitizer and UBSan.  Each target starts from the seeds its
# generator (tests/fuzz/seeds/<target>.sh) makes now plus the corpus kept
# from earlier campaigns (fuzz-corpus/<target>, under the build dir), and
# ends with corpus minimisation (-merge=1) into that kept corpus.  Crash,
# leak and timeout inputs land in fuzz-artifacts/<target>/ (emptied when
# the target's run starts); a target with any makes the script exit 1.  Needs an otherwise idle machine for
# meaningful figures: libFuzzer's speed is CPU bound.
set -eu
secs=${1:-600}
shift || true
cd "$(dirname "$0")/.."
src=$PWD
bdir=${VDK_FUZZ_BUILD:-$src/build-fuzz}
if [ ! -f "$bdir/build.ninja" ]; then
    # No -Dwerror: clang warns where gcc (the -Dwerror=true compiler) does not.
    CC=clang meson setup "$bdir" -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # Every target tests/fuzz/meson.build lists (seeds/ also holds sourced
    # helpers that are not targets).
    mapfile -t targets < <(sed -n "s/^ *\['\(fuzz-[a-z0-9-]*\)'.*/\1/p" \
        "$src/tests/fuzz/meson.build")
fi
# Only the fuzz targets (and what they link), and what seed generators
# take from the build (vdk-img, vdk-nbd, vhd-tool, the test guest).
ninja -C "$bdir" "${targets[@]/#/tests/fuzz/}" img-tool/vdk-img tests/unit/vhd/vhd-tool \
    nbd-server/vdk-nbd tests/guest/vdk-guest.elf tests/guest/vdk-guest.bzImage >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
work=$bdir/fuzz-campaign
rm -rf "$work"
mkdir -p "$work"
printf '%-22s %10s %8s %8s %8s %8s %7s\n' target runs exec/s cov ft corpus crashes
bad=0
for t in "${targets[@]}"; do
    seeds=$work/$t-seeds corpus=$work/$t-corpus keep=$bdir/fuzz-corpus/$t
    art=$bdir/fuzz-artifacts/$t
    rm -rf "$art"   # this campaign's findings only
    mkdir -p "$seeds" "$corpus" "$keep" "$art"
    VDK_SRC=$src VDK_BUILD=$bdir "$src/tests/fuzz/seeds/$t.sh" "$seeds" >/dev/null 2>&1 ||
        echo "warning: seed generator of $t failed" >&2
    log=$work/$t.log
    rc=0
    # -fork keeps going after a crash so one bug does not hide the rest.
    "$bdir/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
        -rss_limit_mb=4096 -artifact_prefix="$art/" -fork=1 -ignore_crashes=1 \
        -ignore_timeouts=1 -ignore_ooms=1 "$corpus" "$keep" "$seeds" >"$log" 2>&1 || rc=$?
    # Minimise into the kept corpus.
    mkdir -p "$work/$t-min"
    "$bdir/tests/fuzz/$t" -merge=1 -timeout=25 "$work/$t-min" "$keep" "$corpus" "$seeds" \
        >"$work/$t.merge.log" 2>&1 || true
    if [ -n "$(ls -A "$work/$t-min")" ]; then
        rm -rf "$keep"
        mv "$work/$t-min" "$keep"
    fi
    # Figures: the last status line of the run (cov, ft, exec/s) and the
    # total of executed units.
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    runs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    eps=$(echo "$last" | sed -n 's/.*exec\/s:\{0,1\} \([0-9]*\).*/\1/p')  # fork mode: no colon
    crashes=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    nkeep=$(find "$keep" -type f | wc -l)
    printf '%-22s %10s %8s %8s %8s %8s %7s\n' "$t" "${runs:-?}" "${eps:-?}" "${cov:-?}" \
        "${ft:-?}" "$nkeep" "$crashes"
    if [ "$crashes" -gt 0 ] || grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:' "$log"; then
        bad=1
    fi
done
[ "$bad" = 0 ] || { echo "crashes or sanitizer reports: see $bdir/fuzz-artifacts and $work/*.log" >&2; exit 1; }
