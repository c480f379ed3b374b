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
# What the structure-aware mutator makes: matches at the window's edge (a
# distance of 4096 fits the 4 KiB window, 4097 does not) and around the
# longest match (258), and incompressible data that compresses to just
# under or just over the cluster size.
/usr/bin/python3 - "$out" <<'PYEOF'
import os, random, sys
out = sys.argv[1]
r = random.Random(7)
def rnd(n): return bytes(r.getrandbits(8) for _ in range(n))
def seed(name, sel, data): open(f'{out}/{name}-{sel}', 'wb').write(bytes([sel]) + data)
for dist in (4095, 4096, 4097):
    head = rnd(dist)
    seed(f'window-{dist}', 3, head + head[:300] + rnd(200))
for n in (257, 258, 259, 516, 517):
    block = rnd(n)
    seed(f'match-{n}', 1, rnd(64) + block + rnd(7) + block)
for keep in (0, 8, 16, 24, 40, 64):
    # a random cluster with a zero run: the output lands near the limit
    seed(f'border-{keep}', 0, rnd(512 - keep) + bytes(keep))
    seed(f'border-{keep}', 3, rnd(4096 - keep) + bytes(keep))
PYEOF
