#!/bin/bash
# SPDX-License-Identifier: MIT
# Replay one fuzz target's corpus: seeds generated now by
# tests/fuzz/seeds/<target>.sh (from the real qemu-img, cryptsetup, ...),
# plus deterministic mutations of each (see replay.c).
#   run-corpus.sh TARGET REPLAY_BINARY [MUTATIONS]
set -eu
target=$1 replay=$2
: "${VDK_BUILD:?}" "${VDK_SRC:?}"
out="$VDK_BUILD/tests/corpus/$target"
rm -rf "$out"
mkdir -p "$out"
gen="$VDK_SRC/tests/fuzz/seeds/$target.sh"
[ -x "$gen" ] || { echo "no seed generator $gen" >&2; exit 1; }
"$gen" "$out"
n=$(find "$out" -type f | wc -l)
[ "$n" -gt 0 ] || { echo "seed generator made no seeds" >&2; exit 1; }
cd "$out"
# A third argument lowers the default for targets whose every input is a
# whole multi-MiB image (VDK_FUZZ_MUTATIONS still wins).
exec "$replay" -m "${VDK_FUZZ_MUTATIONS:-${3:-300}}" "$out"
