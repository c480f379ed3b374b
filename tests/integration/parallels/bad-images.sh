#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad Parallels headers and BATs: a one-line error, no crash, no write.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/fmt-lib.sh"
cd "$T"
export FMT=parallels
qemu-img create -q -f parallels -o cluster_size=64k good.img 4M

bad() { # OFFSET HEX REGEX
    cp good.img b.img
    patch b.img "$1" "$2"
    untouched b.img "$3" "$VDK_IMG" info -f parallels b.img
    untouched b.img "$3" "$VT" write b.img 0 512 1
}
bad 0 00 "not in Parallels format"
bad 16 03000000 "not in Parallels format"
bad 28 00000000 "Zero sectors per track"
bad 28 00000001 "Too big cluster"
bad 32 00000040 "Catalog too large"
bad 32 00000100 "beyond the end of the file"
bad 36 ffffffffffffff00 "too large"
head -c 40 good.img > t.img
untouched t.img "not in Parallels format" "$VDK_IMG" info -f parallels t.img
# a BAT entry over the header: reads and writes fail cleanly
qemu-img create -q -f parallels -o cluster_size=4k m.img 4M
patch m.img 0 $(printf WithoutFreeSpace | od -An -tx1 | tr -d ' \n')
patch m.img 64 01000000
expect_fail "Input/output error|error" "$VDK_IMG" convert -f parallels -O raw m.img m.raw
# A data offset or BAT entry 2 GiB past the end of the file (qemu writes
# there and makes the file 2 GiB): the image reads, a write that lands
# there fails with one warning, and neither it nor the close that follows
# changes the file.
far_out good.img cluster "48 00004000" "64 00800000"
echo "parallels bad images ok"
