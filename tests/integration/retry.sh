#!/bin/bash
# SPDX-License-Identifier: MIT
# lib.sh's retry_setup: a failing set-up step is run again (each retry
# logged with the failed attempt's stderr), only the last attempt's output
# comes out, the last exit status is returned, and with --if only the
# failures whose stderr matches are retried; the known flakes get
# VDK_SETUP_FLAKE_TRIES attempts, other failures VDK_SETUP_TRIES.
. "$VDK_SRC/tests/integration/lib.sh"
export VDK_SETUP_TRIES=3 VDK_SETUP_FLAKE_TRIES=3 VDK_SETUP_DELAY=0

# Fails (with the flake message) until it has run N times.
flaky() { # N
    local n
    n=$(( $(cat "$T/count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" >"$T/count"
    echo "attempt $n"
    if [ "$n" -lt "$1" ]; then echo "qemu-img: x: Unable to get accurate CPU usage" >&2; return 1; fi
    echo "made it" >&2
}

rm -f "$T/count"
out=$(retry_setup flaky 3 2>"$T/err") || fail "third attempt should succeed"
[ "$out" = "attempt 3" ] || fail "stdout of earlier attempts leaked: $out"
[ "$(grep -c '^retry_setup: attempt [12] of 3 failed (exit 1), retrying: flaky 3' "$T/err")" = 2 ] ||
    { cat "$T/err"; fail "retries not logged"; }
grep -q '^retry_setup:   qemu-img: x: Unable to get accurate CPU usage' "$T/err" ||
    fail "failed attempt's stderr not logged"
grep -q '^made it$' "$T/err" || fail "last attempt's stderr lost"

rm -f "$T/count"
rc=0; retry_setup flaky 5 >/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 1 ] || fail "exhausted retries must return the exit status, got $rc"
[ "$(cat "$T/count")" = 3 ] || fail "ran $(cat "$T/count") times, not VDK_SETUP_TRIES=3"

rm -f "$T/count"
retry_setup --if "$LOAD_FLAKES" flaky 2 >/dev/null 2>&1 || fail "--if: a known flake is retried"
other() { echo "x" >>"$T/count"; echo "real error" >&2; return 4; }
rm -f "$T/count"
rc=0; retry_setup --if "$LOAD_FLAKES" other 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "--if: exit status $rc, not 4"
[ "$(wc -l <"$T/count")" = 1 ] || fail "--if retried an unknown failure"
grep -q '^real error$' "$T/err" || fail "--if: stderr lost"

# The known flake gets more attempts than other failures.
rm -f "$T/count"
out=$(VDK_SETUP_FLAKE_TRIES=6 retry_setup flaky 6 2>"$T/err") || fail "flake: 6th attempt should succeed"
[ "$out" = "attempt 6" ] || fail "flake: stdout $out"
grep -q '^retry_setup: attempt 5 of 6 failed' "$T/err" || { cat "$T/err"; fail "flake: tries not 6"; }
rm -f "$T/count"
rc=0; VDK_SETUP_FLAKE_TRIES=6 retry_setup other 2>/dev/null || rc=$?
[ "$rc" = 4 ] && [ "$(wc -l <"$T/count")" = 3 ] ||
    fail "an unknown failure ran $(wc -l <"$T/count") times (rc $rc), not VDK_SETUP_TRIES=3"
echo ok
