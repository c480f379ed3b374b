#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad kernels and bad options: one clear line and exit 1, never a crash,
# never a write to a disk image.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/common.sh"

setup_error() {
    local re=$1; shift
    expect_fail "$re" "$VDK_BOOT" "$@"
    "$VDK_BOOT" "$@" >/dev/null 2>&1 </dev/null && rc=0 || rc=$?
    [ "$rc" -eq 1 ] || fail "exit $rc, wanted 1 (setup error): vdk-boot $*"
}

# Options.
mkdisk "$T/d.raw" raw
cp "$T/d.raw" "$T/d.orig"
setup_error "invalid option 'foo'" --kernel "$GUEST_ELF" --disk "$T/d.raw,foo=bar"
setup_error "readonly" --kernel "$GUEST_ELF" --disk "$T/d.raw,readonly=maybe"
setup_error "unknown image format 'nope'" --kernel "$GUEST_ELF" --disk "$T/d.raw,format=nope"
setup_error "snapshot" --kernel "$GUEST_ELF" --disk "$T/d.raw,snapshot=perhaps"
setup_error "no image file" --kernel "$GUEST_ELF" --disk "format=raw"
setup_error "No such file|not found|cannot open" --kernel "$GUEST_ELF" --disk "$T/missing.raw"
setup_error "serial" --kernel "$GUEST_ELF" --disk "$T/d.raw,serial=abcdefghijklmnopqrstuvwxyz"
many=()
for i in 1 2 3 4 5 6 7 8 9; do many+=(--disk "$T/d.raw,format=raw,readonly=on"); done
setup_error "too many --disk" --kernel "$GUEST_ELF" "${many[@]}"
setup_error "bad --mem" --kernel "$GUEST_ELF" --mem 1k
setup_error "bad --mem" --kernel "$GUEST_ELF" --mem 99999999T
setup_error "bad --cpus" --kernel "$GUEST_ELF" --cpus 0
setup_error "bad --cpus" --kernel "$GUEST_ELF" --cpus 1000
setup_error "bad --timeout" --kernel "$GUEST_ELF" --timeout -1
setup_error "bad --timeout" --kernel "$GUEST_ELF" --timeout soon
setup_error "bad --expect regex" --kernel "$GUEST_ELF" --expect '('
setup_error "no boot entry.*pass --kernel" --disk "$T/d.raw"
setup_error "no --kernel given and no --disk" --mem 64M
setup_error "unexpected argument" --kernel "$GUEST_ELF" extra
setup_error "console log" --kernel "$GUEST_ELF" --console-log "$T/no/such/dir/log"
same_file "$T/d.raw" "$T/d.orig"

# No /dev/kvm, or something else there: a message saying what to do.  Needs
# a private mount namespace (root).
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
    mkdir "$T/emptydev"
    : >"$T/notkvm"
    unshare -m sh -c "mount --bind '$T/emptydev' /dev && exec '$VDK_BOOT' --kernel '$GUEST_ELF'" \
        >/dev/null 2>"$T/nokvm.err" && rc=0 || rc=$?
    [ "$rc" -eq 1 ] && grep -q '/dev/kvm does not exist: enable virtualization' "$T/nokvm.err" ||
        { cat "$T/nokvm.err" >&2; fail "no clear error without /dev/kvm (exit $rc)"; }
    if [ -e /dev/kvm ]; then
        unshare -m sh -c "mount --bind '$T/notkvm' /dev/kvm && exec '$VDK_BOOT' --kernel '$GUEST_ELF'" \
            >/dev/null 2>"$T/nokvm.err" && rc=0 || rc=$?
        [ "$rc" -eq 1 ] && grep -q 'not usable' "$T/nokvm.err" ||
            { cat "$T/nokvm.err" >&2; fail "no clear error for an unusable /dev/kvm (exit $rc)"; }
    fi
fi

need_kvm

# Kernel files: loaded into guest memory, so these need a VM.
head -c 3000 "$GUEST_BZ" >"$T/trunc.bz"
setup_error 'truncated' --kernel "$T/trunc.bz"
head -c $((0x220)) "$GUEST_BZ" >"$T/hdr.bz"
setup_error 'truncated' --kernel "$T/hdr.bz"
cp "$GUEST_BZ" "$T/magic.bz"
printf 'XXXX' | dd of="$T/magic.bz" bs=1 seek=$((0x202)) conv=notrunc status=none
setup_error 'wrong magic' --kernel "$T/magic.bz"
cp "$GUEST_BZ" "$T/old.bz"
printf '\x00\x02' | dd of="$T/old.bz" bs=1 seek=$((0x206)) conv=notrunc status=none
setup_error 'protocol 2\.00 is too old' --kernel "$T/old.bz"
cp "$GUEST_BZ" "$T/no64.bz"
printf '\x00' | dd of="$T/no64.bz" bs=1 seek=$((0x236)) conv=notrunc status=none
setup_error '64-bit entry' --kernel "$T/no64.bz"
head -c 100 "$GUEST_ELF" >"$T/trunc.elf"
setup_error 'truncated' --kernel "$T/trunc.elf"
head -c 6000 "$GUEST_ELF" >"$T/trunc2.elf"
setup_error 'truncated' --kernel "$T/trunc2.elf"
setup_error 'no PVH entry note' --kernel "$VDK_BOOT"
: >"$T/empty"
setup_error 'too short' --kernel "$T/empty"
setup_error 'cannot open kernel' --kernel "$T/nonexistent"
setup_error 'not a regular file' --kernel "$T"
truncate -s 40M "$T/big.initrd"
setup_error 'initrd .* is too big' --kernel "$GUEST_ELF" --initrd "$T/big.initrd" --mem 32M

cp "$GUEST_BZ" "$T/huge.bz"
printf '\x00\x00\x00\x40' | dd of="$T/huge.bz" bs=1 seek=$((0x260)) conv=notrunc status=none
setup_error 'too big for memory' --kernel "$T/huge.bz" --mem 64M
echo "errors: ok"
