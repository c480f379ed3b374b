# SPDX-License-Identifier: MIT
# Sourced by the VHDX seed generators: images made now by qemu-img and
# qemu-io (and vdk when the build has it) with the fuzz template's layout
# (1 MiB log at 1 MiB, BAT at 2 MiB, metadata at 3 MiB).
#   vhdx_images DIR     leaves a few .vhdx files in DIR
set -eu
vhdx_images() {
    local d=$1
    qemu-img create -q -f vhdx -o block_size=1M "$d/dyn.vhdx" 8M
    qemu-img create -q -f vhdx -o block_size=1M,subformat=fixed "$d/fixed.vhdx" 4M
    qemu-img create -q -f vhdx -o block_size=1M,block_state_zero=off "$d/data.vhdx" 8M
    qemu-io -f vhdx -c "write -P 0x41 0 4096" -c "write -P 0x42 3M 512" "$d/data.vhdx" >/dev/null
    local img=${VDK_BUILD:-}/img-tool/vdk-img
    if [ -n "${VDK_BUILD:-}" ] && [ -x "$img" ]; then
        "$img" create -q -f vhdx -b dyn.vhdx -F vhdx "$d/diff.vhdx" >/dev/null
        "$img" create -q -f vhdx -o block_size=1M,logical_sector_size=4096 "$d/s4k.vhdx" 8M
    fi
}
# cut FILE OFFSET LEN OUT
cut_seed() { dd if="$1" of="$4" bs=4096 skip=$(($2 / 4096)) count=$(($3 / 4096)) status=none; }
