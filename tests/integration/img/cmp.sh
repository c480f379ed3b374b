# SPDX-License-Identifier: MIT
# Helpers for comparing vdk-img with qemu-img (sourced after lib.sh).

# same_output DESC ARGS...: run "vdk-img ARGS" and "qemu-img ARGS"; stdout
# and exit code must be identical.
same_output() {
    local desc=$1; shift
    local vrc=0 qrc=0
    "$VDK_IMG" "$@" >"$T/.v" 2>"$T/.ve" || vrc=$?
    qimg "$@" >"$T/.q" 2>"$T/.qe" || qrc=$?
    if ! cmp -s "$T/.v" "$T/.q" || [ "$vrc" != "$qrc" ]; then
        echo "--- vdk-img (rc $vrc)"; cat "$T/.v" "$T/.ve"
        echo "--- qemu-img (rc $qrc)"; cat "$T/.q" "$T/.qe"
        diff "$T/.q" "$T/.v" || true
        fail "$desc: vdk-img $* differs from qemu-img"
    fi
}

# same_error DESC ARGS...: both fail with the same exit code and the same
# message once the program name is normalised.
same_error() {
    local desc=$1; shift
    local vrc=0 qrc=0
    "$VDK_IMG" "$@" >"$T/.v" 2>"$T/.ve" || vrc=$?
    qimg "$@" >"$T/.q" 2>"$T/.qe" || qrc=$?
    [ "$vrc" -ne 0 ] && [ "$vrc" -lt 128 ] || fail "$desc: vdk-img $* exited $vrc"
    [ "$vrc" = "$qrc" ] || fail "$desc: exit $vrc, qemu-img exits $qrc"
    sed 's/^vdk-img/qemu-img/; s/vdk-img --help/qemu-img --help/' "$T/.ve" >"$T/.ven"
    if ! cmp -s "$T/.ven" "$T/.qe"; then
        diff "$T/.qe" "$T/.ven" || true
        fail "$desc: message differs from qemu-img's"
    fi
}

# Allocated bytes of a file.
alloc() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }
size_of() { stat -c %s "$1"; }
