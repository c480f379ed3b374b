#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-boot's exit codes: --expect, timeout, panic, triple fault, reset.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/common.sh"
need_kvm

expect_rc 0 --kernel "$GUEST_ELF" --expect 'ACPI tables ok' --timeout 300
grep -q 'expected output seen' "$T/err" || fail "no verdict for --expect"
expect_rc 0 --kernel "$GUEST_BZ" --expect 'ACPI.*ok' --timeout 300 \
    --append vdkguest.action=hang
expect_rc 6 --kernel "$GUEST_ELF" --expect 'never printed' --timeout 300 \
    --append vdkguest.action=poweroff
expect_rc 2 --kernel "$GUEST_ELF" --timeout 1 --append vdkguest.action=hang
grep -q 'timed out' "$T/err" || fail "no timeout message"
expect_rc 3 --kernel "$GUEST_ELF" --timeout 300 --append vdkguest.action=panic
grep -q 'panic' "$T/err" || fail "no panic message"
expect_rc 4 --kernel "$GUEST_BZ" --timeout 300 --append vdkguest.action=triple
expect_rc 5 --kernel "$GUEST_ELF" --timeout 300 --append vdkguest.action=reset
grep -q 'reset' "$T/err" || fail "no reset message"
# Standard input reaches the guest's UART.
rc=0
printf 'ping 123\n' | "$VDK_BOOT" --kernel "$GUEST_ELF" --timeout 300 \
    --append vdkguest.action=echo --expect "got 'ping 123'" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/out" "$T/err" >&2; fail "console input did not reach the guest (exit $rc)"; }
# On a terminal, the raw mode is undone on every way out: power-off,
# timeout, SIGTERM.  `script` gives the run a pseudo-terminal.
for how in "--append vdkguest.action=poweroff" \
           "--append vdkguest.action=hang --timeout 1" \
           "--append vdkguest.action=hang --term"; do
    cmd="'$VDK_BOOT' -q --kernel '$GUEST_ELF' ${how% --term}"
    case $how in *--term) cmd="timeout --foreground -s TERM 1 $cmd" ;; esac
    script -qec "$cmd; stty -a" /dev/null </dev/null >"$T/tty" 2>&1 || true
    grep -qw -- '-icanon' "$T/tty" && { cat "$T/tty" >&2; fail "terminal left raw after: $how"; }
    grep -qw 'icanon' "$T/tty" && grep -qw 'echo' "$T/tty" ||
        { cat "$T/tty" >&2; fail "no terminal settings seen after: $how"; }
done
echo "verdicts: ok"
