#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-bootkernel: the test guest as the build's compiler,
# linker and mkbzimage made it (ELF with a PVH note, bzImage), plus cut
# and patched copies.
set -eu
out=$1
g=$VDK_BUILD/tests/guest
[ -f "$g/vdk-guest.elf" ] && [ -f "$g/vdk-guest.bzImage" ] ||
    { echo "test guest not built in $g" >&2; exit 1; }
cp "$g/vdk-guest.elf" "$out/guest.elf"
cp "$g/vdk-guest.bzImage" "$out/guest.bzImage"
head -c 4096 "$g/vdk-guest.bzImage" >"$out/bz-head"
head -c 1024 "$g/vdk-guest.elf" >"$out/elf-head"
cp "$g/vdk-guest.bzImage" "$out/bz-reloc"
printf '\x01' | dd of="$out/bz-reloc" bs=1 seek=$((0x234)) conv=notrunc status=none
