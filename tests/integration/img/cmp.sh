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

# qemu_progress FILE: FILE (stdout of a command run with -p into a pipe)
# starts with qemu-img's progress lines -- "    (0.00/100%)\r", then
# percentages that never go down -- and either "    (100.00/100%)\r\n" or, as compare does, a
# message right after the last '\r' and a final "\n".  Prints what
# follows the progress (without that final "\n").
qemu_progress() {
    python3 - "$1" <<'PYEOF' || fail "progress output of $1 is not qemu-img's"
import re, sys
data = open(sys.argv[1], 'rb').read().decode()
m = re.match(r'((?:    \(\d+\.\d\d/100%\)\r)+)', data)
if not m:
    sys.exit('no progress lines: %r' % data[:200])
pcts = [float(x) for x in re.findall(r'\((\d+\.\d\d)/100%\)', m.group(1))]
rest = data[m.end():]
if rest.startswith('\n'):
    rest = rest[1:]
    if pcts[-1] != 100.0:
        sys.exit('progress %s ends before 100' % pcts)
elif not rest.endswith('\n\n'):
    sys.exit('no final newline after the message: %r' % rest)
else:
    rest = rest[:-1]
if pcts[0] != 0.0:
    sys.exit('progress %s does not start at 0' % pcts)
for a, b in zip(pcts, pcts[1:]):
    if b < a:
        sys.exit('progress steps %s -> %s' % (a, b))
sys.stdout.write(rest)
PYEOF
}
