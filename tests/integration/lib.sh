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
