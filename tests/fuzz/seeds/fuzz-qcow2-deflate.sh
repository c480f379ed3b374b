#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-qcow2-deflate: pieces of what guests store (programs,
# text, random and repetitive data, zeros with a few bytes), each behind
# a first byte that picks the cluster size.
set -eu
out=$1
seed() { # NAME CLUSTER-SIZE-SELECTOR (0..7), data on stdin
    { printf "\\$(printf %03o "$2")"; head -c 65536; } >"$out/$1-$2"
}
bin=$(command -v qemu-img)
head -c 1000 /dev/urandom >"$out/.pat"
for sel in 0 3 7; do
    head -c 200000 "$bin" | tail -c 65536 | seed program $sel
    seed text $sel </usr/share/common-licenses/GPL-3
    head -c 65536 /dev/urandom | seed random $sel
    yes 'vdk qcow2 deflate seed line 0123456789' | head -c 65536 | seed lines $sel
    { head -c 3000 /dev/urandom; head -c 3000 /dev/zero; } | seed mixed $sel
    for _ in $(seq 60); do cat "$out/.pat"; printf 'x'; done | seed repeats $sel
done
rm -f "$out/.pat"
# a short input (zero-padded), and runs of one byte around the longest match
printf '\007abc' >"$out/short"
{ printf '\007'; for l in 255 256 257 258 259 260 515 516; do head -c $l /dev/zero | tr '\0' a; printf b; done; } >"$out/runs"
