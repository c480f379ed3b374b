# SPDX-License-Identifier: MIT
# Helpers for the seed generators (sourced, not a generator itself).
#   seed_retry CMD...   run a peer's step that makes a seed, again while it
#                       fails with a known load flake: qemu-img's LUKS
#                       create benchmarks PBKDF2 first and, on a busy host,
#                       can stop with "Unable to get accurate CPU usage"
#                       (up to 10 attempts, 1 s apart); any other failure
#                       is returned at once, with its stderr.
seed_retry() {
    local i err
    err=$(mktemp)
    for i in 1 2 3 4 5 6 7 8 9 10; do
        if "$@" 2>"$err"; then
            rm -f "$err"
            return 0
        fi
        grep -q 'Unable to get accurate CPU usage' "$err" && [ "$i" -lt 10 ] || break
        sleep 1
    done
    cat "$err" >&2
    rm -f "$err"
    return 1
}
