#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img info beside qemu-img info on the same raw images: JSON and human.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

qimg create -q -f raw empty.raw 4M
qimg create -q -f raw zero.raw 0
qimg create -q -f raw -o preallocation=full full.raw 3M
qimg create -q -f raw data.raw 16M
retry_setup qemu-io -f raw -c 'write -P 7 0 64k' -c 'write -P 9 5M 1M' data.raw >/dev/null
truncate -s 1G big.raw
cp empty.raw 'we"ird\name é.raw'

for img in empty.raw zero.raw full.raw data.raw big.raw 'we"ird\name é.raw'; do
    for out in human json; do
        same_output "info $img" info --output=$out "$img"
        same_output "info -f raw $img" info -f raw --output=$out "$img"
        same_output "info --backing-chain $img" info --backing-chain --output=$out "$img"
        same_output "info -U $img" info -U --output=$out "$img"
    done
done
same_output "info absolute path" info --output=json "$T/data.raw"
same_output "info --image-opts" info --output=json --image-opts \
    driver=raw,file.filename=data.raw
same_output "info default output" info data.raw
echo -n secret >pw
same_output "info --object" info --object secret,id=s0,file=pw --output=json data.raw

# The JSON carries qemu-img's field names.
"$VDK_IMG" info --output=json data.raw >j
for k in virtual-size filename format actual-size dirty-flag; do
    grep -q "\"$k\"" j || fail "info JSON lacks $k"
done
echo ok
