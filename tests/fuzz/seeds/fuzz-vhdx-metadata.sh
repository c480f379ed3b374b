#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vhdx-metadata: that structure cut out of VHDX images made now.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
. "$(dirname "$0")/fuzz-vhdx-common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
vhdx_images "$tmp"
for f in "$tmp"/*.vhdx; do
    cut_seed "$f" 3145728 69632 "$out/$(basename "$f" .vhdx).bin"
done
