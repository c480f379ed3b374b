# SPDX-License-Identifier: MIT
# Helpers for the vdk-nbd tests; source after lib.sh.
#   start_nbd SOCK ARGS...   start vdk-nbd on unix socket SOCK (background),
#                            wait until it listens; sets NBD_PID
#   stop_nbd                 SIGTERM, wait, require exit 0
#   uri SOCK [EXPORT]        nbd+unix URI
#   PY                       Debian's python3 (python3-libnbd lives there)
: "${VDK_NBD:?run through meson test}"
PY=/usr/bin/python3
NBD_PID=

start_nbd() {
    local sock=$1; shift
    rm -f "$sock"
    "$VDK_NBD" -k "$sock" "$@" 2>>"$T/nbd.log" &
    NBD_PID=$!
    local i=0
    while [ ! -S "$sock" ]; do
        kill -0 "$NBD_PID" 2>/dev/null || { cat "$T/nbd.log" >&2; fail "vdk-nbd exited at start: $*"; }
        i=$((i + 1)); [ "$i" -lt 600 ] || fail "vdk-nbd did not listen"
        sleep 0.05
    done
}

stop_nbd() {
    [ -n "$NBD_PID" ] || return 0
    kill -TERM "$NBD_PID"
    local rc=0
    wait "$NBD_PID" || rc=$?
    NBD_PID=
    [ "$rc" -eq 0 ] || { cat "$T/nbd.log" >&2; fail "vdk-nbd exited $rc after SIGTERM"; }
    if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$T/nbd.log"; then
        cat "$T/nbd.log" >&2; fail "sanitizer report from vdk-nbd"
    fi
}

uri() { echo "nbd+unix:///${2:-}?socket=$1"; }

trap 'if [ -n "$NBD_PID" ]; then kill -KILL "$NBD_PID" 2>/dev/null || true; fi; rm -rf "$T"' EXIT
