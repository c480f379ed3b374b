#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-size: sizes, numbers and booleans as command lines and
# option strings carry them, valid and not.
#   fuzz-size.sh OUTDIR
set -eu
mkdir -p "$1"
out=$(cd "$1" && pwd)
n=0
seed() { printf '%s' "$1" >"$out/size-$(printf '%03d' "$n")"; n=$((n + 1)); }
for s in 0 1 512 1b 1B 4k 4K 1M 64M 1.5G 0.5k 1T 2P 7E 8E \
         9223372036854775807 9223372036854775808 18446744073709551615 \
         18446744073709551616 99999999T 8388607.99999T 1.99999999999999999k \
         -1 1Q 1kk 1.5 1. .5k 0x10 0xfF 010 08 1e3 k +1 \
         on off true false yes no ON 2; do
    seed "$s"
done
seed ''
seed ' 1'
seed '1 '
# Binary: the first 8 bytes are also printed as a size.
printf '\377\377\377\377\377\377\377\377' >"$out/size-max-u64"
printf '\000\004\000\000\000\000\000\000' >"$out/size-1k-u64"
