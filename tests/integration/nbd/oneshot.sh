#!/bin/bash
# SPDX-License-Identifier: MIT
# Without -t the server serves one client and exits, and (as in qemu-nbd)
# only a connection that reached transmission counts as that client:
# port probes, health checks, `nbdinfo --list` and clients that give up
# anywhere in the handshake leave the server up for the real client that
# follows.  A raw socket aborts at every stage of the handshake; after
# each, the server must still be there.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
qimg create -f raw "$T/a.raw" 4M >/dev/null
start_nbd "$S" -f raw -x disk "$T/a.raw"

$PY - "$S" <<'PYEOF' || fail "aborted handshakes"
import socket, struct, sys, time
path = sys.argv[1]
NBDMAGIC = 0x4e42444d41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003e889045565a9
FIXED, NO_ZEROES = 1, 2

def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s

def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("server closed")
        b += c
    return b

def greeting(s):
    m, o, f = struct.unpack(">QQH", recv_exact(s, 18))
    assert m == NBDMAGIC and o == IHAVEOPT, (hex(m), hex(o))

def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

def replies(s):
    while True:
        m, opt, typ, ln = struct.unpack(">QIII", recv_exact(s, 20))
        assert m == REP_MAGIC
        recv_exact(s, ln)
        if typ != 2:  # NBD_REP_SERVER comes before the final ACK
            return typ

def stage_connect_close(s): pass
def stage_half_greeting(s): recv_exact(s, 8)
def stage_greeting(s): greeting(s)
def stage_half_flags(s):
    greeting(s); s.sendall(b"\0\0")
def stage_flags(s):
    greeting(s); s.sendall(struct.pack(">I", FIXED | NO_ZEROES))
def stage_half_option(s):
    stage_flags(s); s.sendall(struct.pack(">Q", IHAVEOPT))
def stage_option_payload_cut(s):
    stage_flags(s); s.sendall(struct.pack(">QII", IHAVEOPT, 6, 100) + b"\0\0")
def stage_after_list(s):
    stage_flags(s); option(s, 3); replies(s)
def stage_after_structured(s):
    stage_flags(s); option(s, 8); replies(s)
def stage_after_info(s):
    stage_flags(s)
    name = b"disk"
    option(s, 6, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    replies(s)
def stage_polite_abort(s):
    stage_flags(s); option(s, 2)
    try:
        replies(s)
    except (EOFError, ConnectionResetError):
        pass
def stage_bad_magic(s):
    greeting(s); s.sendall(struct.pack(">I", FIXED)); s.sendall(b"X" * 16)
    try:
        s.recv(100)
    except ConnectionResetError:
        pass
def stage_absent_export(s):
    stage_flags(s)
    name = b"nosuch"
    option(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    replies(s)

stages = [stage_connect_close, stage_half_greeting, stage_greeting, stage_half_flags,
          stage_flags, stage_half_option, stage_option_payload_cut, stage_after_list,
          stage_after_structured, stage_after_info, stage_polite_abort, stage_bad_magic,
          stage_absent_export]
for st in stages:
    s = conn()
    st(s)
    s.close()
    # The server has seen the close once a new connection gets a greeting.
    s = conn()
    greeting(s)
    s.close()
print("%d stages aborted, server still up" % len(stages))
PYEOF

nbdinfo --list "$(uri "$S")" >/dev/null || fail "nbdinfo --list"
kill -0 "$NBD_PID" 2>/dev/null || fail "server gone after nbdinfo --list"
# nbdinfo without --list reaches transmission: it is the one client.
nbdinfo "$(uri "$S" disk)" >/dev/null || fail "nbdinfo of the export"
wait "$NBD_PID" || fail "vdk-nbd exit status after its client"
NBD_PID=
# Again, with qemu-io as the real client.
start_nbd "$S" -f raw -x disk "$T/a.raw"
nbdinfo --list "$(uri "$S")" >/dev/null || fail "nbdinfo --list (2)"
nbdinfo --size "$(uri "$S" nosuch)" >/dev/null 2>&1 && fail "absent export answered"
kill -0 "$NBD_PID" 2>/dev/null || fail "server gone after a refused export"
qemu-io -f raw "$(uri "$S" disk)" -c 'write -P 0x5a 0 64k' >"$T/qio.out" 2>&1 ||
    fail "real client not served"
grep -q failed "$T/qio.out" && { cat "$T/qio.out" >&2; fail "write failed"; }
# One client served: the server ends on its own, with status 0.
wait "$NBD_PID" || fail "vdk-nbd exit status after its client"
NBD_PID=
qemu-io -f raw -c 'read -P 0x5a 0 64k' "$T/a.raw" | grep -q failed && fail "data not written"
echo "oneshot: ok"
