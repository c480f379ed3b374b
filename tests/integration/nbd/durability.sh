#!/bin/bash
# SPDX-License-Identifier: MIT
# Durability and shutdown: data acknowledged after FLUSH or a FUA write is
# in the image even when the server is SIGKILLed right after; SIGTERM with
# requests in flight lets them finish and exits 0.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
qimg create -f raw "$T/a.raw" 16M >/dev/null
start_nbd "$S" -t -f raw -x disk "$T/a.raw"
$PY - "$(uri "$S" disk)" "$NBD_PID" <<'PYEOF' || fail "write, flush, SIGKILL"
import os, signal, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite(b"\xa1" * (1 << 20), 1 << 20)
h.pwrite(b"\xa2" * 65536, 4 << 20)
h.flush()                                            # acknowledged
h.pwrite(b"\xa3" * 65536, 6 << 20, nbd.CMD_FLAG_FUA) # acknowledged
os.kill(int(sys.argv[2]), signal.SIGKILL)
PYEOF
rc=0; wait "$NBD_PID" || rc=$?
NBD_PID=
[ "$rc" -eq 137 ] || fail "server was not killed ($rc)"
qemu-io -f raw -c 'read -P 0xa1 1M 1M' -c 'read -P 0xa2 4M 64k' -c 'read -P 0xa3 6M 64k' \
    "$T/a.raw" >"$T/qio"
grep -q 'Pattern verification failed' "$T/qio" && fail "acknowledged data lost"

# SIGTERM while a client streams writes: the server finishes what it
# took, exits 0, and every acknowledged write is in the file.
start_nbd "$S" -t -f raw -x disk "$T/a.raw"
$PY - "$(uri "$S" disk)" "$NBD_PID" "$T/acked" <<'PYEOF' || fail "SIGTERM with writes in flight"
import os, signal, sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
acked = []
cookies = {}
for i in range(64):
    buf = nbd.Buffer.from_bytearray(bytearray([i + 1]) * 65536)
    cookies[h.aio_pwrite(buf, i * 65536)] = i
os.kill(int(sys.argv[2]), signal.SIGTERM)
try:
    while h.aio_in_flight() > 0:
        h.poll(-1)
        for c, i in list(cookies.items()):
            if h.aio_command_completed(c):
                acked.append(i); del cookies[c]
except nbd.Error:
    pass  # the server went away after finishing
open(sys.argv[3], "w").write(" ".join(map(str, acked)))
PYEOF
rc=0; wait "$NBD_PID" || rc=$?
NBD_PID=
[ "$rc" -eq 0 ] || fail "SIGTERM exit status $rc"
for i in $(cat "$T/acked"); do
    qemu-io -f raw -c "read -P $((i + 1)) $((i * 65536)) 64k" "$T/a.raw" | grep -q 'Pattern verification failed' \
        && fail "acknowledged write $i missing"
done
echo ok
