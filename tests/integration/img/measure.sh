#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img measure beside qemu-img measure (raw output format).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

qimg create -q -f raw src.raw 6M
retry_setup qemu-io -f raw -c 'write -P 1 1M 1M' src.raw >/dev/null
qimg create -q -f raw odd.raw 1000

for out in human json; do
    for size in 0 1 512 1000 1M 1G 1.5G 16T; do
        same_output "measure --size $size" measure --output=$out -O raw --size "$size"
    done
    same_output "measure default -O" measure --output=$out --size 4M
    same_output "measure src" measure --output=$out -O raw src.raw
    same_output "measure -f raw src" measure --output=$out -f raw -O raw src.raw
    same_output "measure odd" measure --output=$out -f raw odd.raw
    same_output "measure prealloc" measure --output=$out -O raw -o preallocation=full --size 3M
done
same_error "measure both" measure --size 1M src.raw
same_error "measure neither" measure -O raw
same_error "measure bad size" measure --size 1Q
same_error "measure unknown format" measure -O nosuchfmt --size 1M
same_error "measure unknown option" measure -O raw -o bogus=1 --size 1M
echo ok
