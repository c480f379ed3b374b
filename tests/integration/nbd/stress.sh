#!/bin/bash
# SPDX-License-Identifier: MIT
# Load: fio's nbd engine doing random writes with verification from
# several jobs at once, 32 clients at once, a pipelining client under a
# small in-flight cap, and the connection cap (-e).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
qimg create -f raw "$T/a.raw" 32M >/dev/null
start_nbd "$S" -t -f raw -x disk --max-inflight=4M "$T/a.raw"

# fio: 4 jobs, each on its own 8 MiB, random 4k..64k writes, crc32c verify.
fio --name=nbdw --ioengine=nbd --uri="$(uri "$S" disk)" --rw=randwrite \
    --bsrange=4k-64k --size=8M --offset_increment=8M --numjobs=4 --iodepth=16 \
    --verify=crc32c --verify_fatal=1 --randrepeat=0 --group_reporting \
    --output="$T/fio.out" || { cat "$T/fio.out"; fail "fio write+verify"; }
grep -q 'err= 0' "$T/fio.out" || { cat "$T/fio.out"; fail "fio reported errors"; }

# 32 clients at once, each writing and reading back its own 1 MiB.
for i in $(seq 0 31); do
    $PY - "$(uri "$S" disk)" "$i" <<'PYEOF' &
import sys, nbd
i = int(sys.argv[2])
h = nbd.NBD(); h.connect_uri(sys.argv[1])
data = bytes([i + 1]) * 65536
for k in range(16):
    h.pwrite(data, (i << 20) + k * 65536)
h.flush()
for k in range(16):
    assert h.pread(65536, (i << 20) + k * 65536) == data
h.shutdown()
PYEOF
done
rc=0
for j in $(jobs -p); do
    [ "$j" = "$NBD_PID" ] && continue
    wait "$j" || rc=1
done
[ "$rc" -eq 0 ] || fail "one of 32 clients failed"
$PY - "$(uri "$S" disk)" <<'PYEOF' || fail "data of the 32 clients"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
for i in range(32):
    assert h.pread(1 << 20, i << 20) == bytes([i + 1]) * (1 << 20), i
PYEOF

# A client pipelining 256 writes of 1 MiB before reading any reply: the
# 4 MiB in-flight cap holds the server back, and every write completes.
$PY - "$S" <<'PYEOF' || fail "pipelined writes"
import socket, struct, sys, threading
s = socket.socket(socket.AF_UNIX); s.settimeout(120); s.connect(sys.argv[1])
def recvn(n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b)); assert k
        b += k
    return b
recvn(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454f5054, 7, 10) + struct.pack(">I", 4) + b"disk" + b"\0\0")
while True:
    m, o, t, l = struct.unpack(">QIII", recvn(20)); recvn(l)
    if t == 1: break
got = {}
def reader():
    for _ in range(256):
        m, e, h = struct.unpack(">IIQ", recvn(16)); got[h] = e
th = threading.Thread(target=reader); th.start()
for i in range(256):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, i, (i % 32) << 20, 1 << 20) + bytes([i % 251]) * (1 << 20))
th.join()
assert len(got) == 256 and all(e == 0 for e in got.values()), got
PYEOF
stop_nbd

# -e 2: a third client at once is turned away; the first two carry on.
start_nbd "$S" -t -e 2 -f raw -x disk "$T/a.raw"
$PY - "$(uri "$S" disk)" <<'PYEOF' || fail "connection cap"
import sys, nbd
a = nbd.NBD(); a.connect_uri(sys.argv[1])
b = nbd.NBD(); b.connect_uri(sys.argv[1])
c = nbd.NBD()
try:
    c.connect_uri(sys.argv[1]); sys.exit("third client accepted")
except nbd.Error:
    pass
a.pread(512, 0); b.pread(512, 0)
a.shutdown()
PYEOF
nbdinfo "$(uri "$S" disk)" >/dev/null || fail "slot not freed"
stop_nbd
echo ok
