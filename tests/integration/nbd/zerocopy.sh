#!/bin/bash
# SPDX-License-Identifier: MIT
# Large reads of read-only raw and qcow2 exports go out straight from the
# mapped image file (nbd-server/zerocopy.c).  The bytes must be the same as
# through the ordinary path: structured replies with holes, simple
# replies, unaligned ranges, a file truncated under the server by a
# program that ignores the locks (the tail reads as zeros), and writable
# exports (which keep the ordinary path).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
head -c 6M /dev/urandom >"$T/a.raw"
truncate -s 16M "$T/a.raw"                      # 10 MiB hole at the end
qemu-io -f raw -c 'write -z 1M 1M' -c 'write -P 0x5c 12M 512k' "$T/a.raw" >/dev/null
qimg convert -f raw -O qcow2 "$T/a.raw" "$T/a.qcow2"
cp "$T/a.raw" "$T/ref.raw"

check() { # what
    $PY - "$(uri "$S")" "$T/ref.raw" "$1" <<'PYEOF' || fail "$1"
import random, sys, nbd
uri, ref, what = sys.argv[1:]
data = open(ref, "rb").read()
rng = random.Random(5)
for structured in (True, False):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.connect_uri(uri)
    reads = [(0, 16 << 20), (0, 32 << 20 >> 1), (65536, 1 << 20), (6 << 20, 4 << 20),
             ((1 << 20) - 7, (2 << 20) + 11)]
    reads += [(rng.randrange(0, 15 << 20), rng.randrange(65536, 1 << 20)) for _ in range(40)]
    for off, ln in reads:
        ln = min(ln, (16 << 20) - off)
        got = h.pread(ln, off)
        if got != data[off:off + ln]:
            sys.exit("%s: read %d+%d (structured %s) differs" % (what, off, ln, structured))
    h.shutdown()
PYEOF
}

start_nbd "$S" -t -f raw "$T/a.raw"
check "raw, writable (ordinary path)"
stop_nbd
start_nbd "$S" -t -r -f raw "$T/a.raw"
check "raw, read-only"
stop_nbd
start_nbd "$S" -t -r -f qcow2 "$T/a.qcow2"
check "qcow2, read-only"
stop_nbd
start_nbd "$S" -t -f qcow2 "$T/a.qcow2"
check "qcow2, writable (ordinary path)"
stop_nbd

# The file shrinks under a raw export: past the new end reads zeros.
start_nbd "$S" -t -r -f raw "$T/a.raw"
truncate -s 4M "$T/a.raw"
truncate -s 4M "$T/ref.raw"
truncate -s 16M "$T/ref.raw"
check "raw, file shrunk under the server"
stop_nbd
echo "zerocopy: ok"
