# SPDX-License-Identifier: MIT
# Shared by the boot tests: source after tests/integration/lib.sh.
#   need_kvm          - skip (77) unless /dev/kvm exists and a VM starts
#   mkdisk FILE FMT   - 8 MiB image with the test guest's host patterns
#   check_disk FILE FMT - the patterns the guest writes are there
#   boot ARGS...      - run vdk-boot; sets $rc, output in $T/out, $T/err
VDK_BOOT=${VDK_BOOT:-$VDK_BUILD/guest-boot/vdk-boot}
GUEST_ELF=$VDK_BUILD/tests/guest/vdk-guest.elf
GUEST_BZ=$VDK_BUILD/tests/guest/vdk-guest.bzImage
[ -x "$VDK_BOOT" ] || fail "no vdk-boot at $VDK_BOOT"
[ -f "$GUEST_ELF" ] && [ -f "$GUEST_BZ" ] || fail "test guest not built"

boot() {
    rc=0
    "$VDK_BOOT" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
    if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$T/err"; then
        cat "$T/err" >&2
        fail "sanitizer report: vdk-boot $*"
    fi
    [ "$rc" -lt 128 ] || { cat "$T/err" >&2; fail "vdk-boot crashed (signal $((rc - 128))): $*"; }
}

need_kvm() {
    [ -e /dev/kvm ] || skip "no /dev/kvm on this machine (KVM is hardware the boot tests need)"
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not accessible to $(id -un)"
    boot --kernel "$GUEST_ELF" --append vdkguest.action=poweroff --quiet --timeout 120
    if [ "$rc" -eq 1 ] && grep -q '/dev/kvm\|KVM' "$T/err"; then
        skip "/dev/kvm is not usable: $(head -n1 "$T/err")"
    fi
    [ "$rc" -eq 0 ] || { cat "$T/err" >&2; fail "minimal guest did not power off (exit $rc)"; }
}

mkdisk() {
    qemu-img create -q -f "$2" "$1" 8M
    retry_setup qemu-io -f "$2" -c "write -P 0x5a 0 64k" -c "write -P 0x77 3M 64k" "$1" >/dev/null
}

# qemu-io prints "Pattern verification failed" on a mismatch.
check_disk() {
    local out
    out=$(qemu-io -f "$2" -c "read -P 0x5a 0 64k" -c "read -P 0xc3 1M 64k" \
                  -c "read -P 0 3M 64k" "$1" 2>&1) || fail "qemu-io failed on $1: $out"
    case $out in *"verification failed"*) fail "guest data missing in $1: $out";; esac
}

expect_rc() {
    local want=$1; shift
    boot "$@"
    [ "$rc" -eq "$want" ] || { cat "$T/out" "$T/err" >&2; fail "exit $rc, wanted $want: vdk-boot $*"; }
}

# Does this libvdk have the format driver?  (qcow2 comes from another work
# item; until it is merged the qcow2 cases cannot run.)
have_format() {
    ! "$VDK_BOOT" --kernel /nonexistent --disk "$T/probe,format=$1" 2>&1 |
        grep -q "unknown image format"
}
