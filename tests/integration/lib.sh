# SPDX-License-Identifier: MIT
# Shared helpers for integration tests.  Source it first:
#   . "$VDK_SRC/tests/integration/lib.sh"
# It gives: $T (a fresh scratch dir, removed on exit), $VDK_IMG, and
#   fail MSG           - print and exit 1
#   skip MSG           - print and exit 77 (only for missing hardware)
#   expect_fail REGEX CMD...  - CMD must exit non-zero, not crash (no
#                       signal, no sanitizer report) and print REGEX on stderr
#   same_file A B      - byte-identical or fail
#   qimg ...           - the real qemu-img
#   retry_setup [--if REGEX] CMD... - run a peer's set-up step, retrying it
#                       when it fails (see below); never for an assertion
set -eu
: "${VDK_SRC:?run through meson test}" "${VDK_BUILD:?run through meson test}"
VDK_IMG=${VDK_IMG:-$VDK_BUILD/img-tool/vdk-img}
mkdir -p "$VDK_BUILD/tests/tmp"
T=$(mktemp -d "$VDK_BUILD/tests/tmp/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
qimg() { qemu-img "$@"; }

expect_fail() {
    local re=$1; shift
    local rc=0
    "$@" >"$T/.out" 2>"$T/.err" || rc=$?
    [ "$rc" -ne 0 ] || fail "expected failure: $*"
    [ "$rc" -lt 128 ] || fail "crashed with signal $((rc - 128)): $*"
    if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$T/.err"; then
        cat "$T/.err" >&2; fail "sanitizer report: $*"
    fi
    grep -qE -- "$re" "$T/.err" || { cat "$T/.err" >&2; fail "stderr of '$*' lacks /$re/"; }
    [ "$(wc -l <"$T/.err")" -le 3 ] || { cat "$T/.err" >&2; fail "error not short: $*"; }
}

same_file() { cmp -s "$1" "$2" || fail "$1 and $2 differ"; }

# A peer's set-up step (qemu-img create/convert/amend of an encrypted image,
# qemu-io filling a fixture, cryptsetup luksFormat, ...) can fail on a
# loaded machine for reasons of its own: qemu-img's LUKS iteration benchmark
# stops with "Unable to get accurate CPU usage" when the kernel's per-thread
# CPU accounting reads 0 ms (QEMU 7.2 with Debian's backport of the threaded
# benchmark).  retry_setup runs CMD up to VDK_SETUP_TRIES times (default 3),
# or up to VDK_SETUP_FLAKE_TRIES times (default 10) while its failures are
# the known flakes of LOAD_FLAKES, which come in bursts when the machine is
# busy (3 in a row failed one run; 4 attempts in 30 fail at load 3 on a
# 2-CPU VM whose thread CPU clock is coarse).  It waits VDK_SETUP_DELAY
# seconds (default 1) times the attempt number, at most 3 s, in between,
# logs every failed attempt with its stderr, and returns the last exit
# status.  Only the last attempt's stdout and stderr come out, so callers
# can redirect or capture it as they would the bare command.  With
# --if REGEX it retries only failures whose stderr matches REGEX
# (LOAD_FLAKES names the known ones): use that where the peer's success on
# a vdk-made image is itself part of what the test checks.  CMD must not
# read stdin and must be safe to run again (it overwrites what it makes).
# Assertions are never retried.
LOAD_FLAKES='Unable to get accurate CPU usage'
retry_setup() {
    local only='' try=1 tries rc out pause
    if [ "${1:-}" = --if ]; then only=$2; shift 2; fi
    out=$(mktemp "$T/.retry.XXXXXX")
    while :; do
        rc=0
        "$@" >"$out" 2>"$out.err" </dev/null || rc=$?
        tries=${VDK_SETUP_TRIES:-3}
        if [ "$rc" -ne 0 ] && grep -qE -- "$LOAD_FLAKES" "$out.err"; then
            tries=${VDK_SETUP_FLAKE_TRIES:-10}
        fi
        if [ "$rc" -eq 0 ] || [ "$try" -ge "$tries" ] ||
           { [ -n "$only" ] && ! grep -qE -- "$only" "$out.err"; }; then
            cat "$out"; cat "$out.err" >&2
            rm -f "$out" "$out.err"
            return "$rc"
        fi
        echo "retry_setup: attempt $try of $tries failed (exit $rc), retrying: $*" >&2
        sed 's/^/retry_setup:   /' "$out.err" >&2
        pause=$((${VDK_SETUP_DELAY:-1} * try))
        sleep $((pause > 3 ? 3 : pause))
        try=$((try + 1))
    done
}
