#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-nbd serving a LUKS image unlocked with --object secret,file=... must
# not keep the passphrase anywhere in its memory once the keys are
# derived: the whole address space (/proc/PID/maps + /proc/PID/mem) is
# scanned for it.  Error messages naming a secret never echo its value.
. "$VDK_SRC/tests/integration/lib.sh"
VDK_NBD=${VDK_NBD:-$VDK_BUILD/nbd-server/vdk-nbd}
. "$VDK_SRC/tests/integration/nbd/common.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

# A passphrase no other memory holds by chance.
PASS="vdk-pass-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
S=$(secret_file s "$PASS")
O=(--object "secret,id=s,file=$S")

scan() { # PID: exit 0 when PASS is found in the process's memory
    /usr/bin/python3 - "$1" "$PASS" <<'PY'
import re, sys
pid, needle = sys.argv[1], sys.argv[2].encode()
found = []
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
        lo, hi, perm = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
        if perm[0] != "r" or "[vvar]" in line or "[vsyscall]" in line:
            continue
        try:
            mem.seek(lo)
            data = mem.read(hi - lo)
        except OSError:
            continue
        if needle in data:
            found.append(line.strip())
for f in found:
    print("passphrase in", f, file=sys.stderr)
sys.exit(0 if found else 1)
PY
}

for fmt in luks qcow2; do
    if [ $fmt = luks ]; then
        "$VDK_IMG" create -q -f luks "${O[@]}" -o key-secret=s,iter-time=10 "$T/img" 4M
        IO="driver=luks,key-secret=s,file.filename=$T/img"
    else
        "$VDK_IMG" create -q -f qcow2 "${O[@]}" -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10 "$T/img" 4M
        IO="driver=qcow2,encrypt.key-secret=s,file.filename=$T/img"
    fi
    start_nbd "$T/sock" "${O[@]}" --image-opts -t "$IO"
    # Serving: a client reads through the unlocked image.
    nbdinfo --size "$(uri "$T/sock")" >/dev/null || fail "$fmt: vdk-nbd does not serve"
    if scan "$NBD_PID"; then
        fail "$fmt: vdk-nbd keeps the passphrase in memory while serving"
    fi
    stop_nbd
done
echo "ok no passphrase in vdk-nbd's memory"

# Errors about a secret name its id, never its value.
for def in "secret,id=x,data=$PASS,format=bogus" "secret,id=x,data=$PASS,file=$S" \
           "secret,id=x,data=$PASS,bogus=1" "secret,id=x,data=!$PASS,format=base64" \
           "secrett,id=x,data=$PASS" "secret,data=$PASS"; do
    rc=0
    "$VDK_IMG" info --object "$def" "$T/img" >/dev/null 2>"$T/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "bad --object accepted: $def"
    ! grep -qF "$PASS" "$T/err" || { cat "$T/err" >&2; fail "an error echoes the secret ($def)"; }
    grep -q . "$T/err" || fail "no error message for $def"
done
echo "ok errors never echo a secret"
