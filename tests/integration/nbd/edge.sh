#!/bin/bash
# SPDX-License-Identifier: MIT
# Edge cases through nbdsh's Python binding (libnbd with strict checks off
# so the server sees the bad requests) and through raw sockets (malformed
# handshakes and requests).  The server must answer with the right NBD
# error or hang up cleanly, and keep serving everyone else.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
qimg create -f raw "$T/a.raw" 8M >/dev/null
retry_setup qemu-io -f raw -c 'write -P 0xcd 1M 1M' "$T/a.raw" >/dev/null
start_nbd "$S" -t -f raw -x disk "$T/a.raw"

$PY - "$S" <<'PYEOF' || fail "nbdsh edge cases"
import errno, sys
import nbd

sock = sys.argv[1]
uri = "nbd+unix:///disk?socket=" + sock

def expect_err(fn, want, what):
    try:
        fn()
    except nbd.Error as e:
        if e.errno != errno.errorcode[want]:
            sys.exit("%s: errno %s, wanted %s (%s)" % (what, e.errno, want, e))
        return
    sys.exit("%s: no error" % what)

# Absent export: refused in the handshake with a message.
h = nbd.NBD()
try:
    h.connect_uri("nbd+unix:///nosuch?socket=" + sock)
    sys.exit("connected to an absent export")
except nbd.Error as e:
    assert e.errno == "ENOENT", str(e)

# Option negotiation: list, info, meta contexts, then go.
h = nbd.NBD()
h.set_opt_mode(True)
h.connect_uri(uri)
names = []
h.opt_list(lambda n, d: names.append(n))
assert names == ["disk"], names
ctxs = []
h.opt_list_meta_context(lambda c: ctxs.append(c))
assert ctxs == ["base:allocation"], ctxs  # no -A: no allocation depth
h.set_export_name("nosuch")
expect_err(h.opt_info, errno.ENOENT, "opt_info of an absent export")
h.set_export_name("disk")
h.opt_info()
assert h.get_size() == 8 << 20
h.add_meta_context("base:allocation")
h.opt_go()

h.set_strict_mode(0)
size = h.get_size()
# Out of range and oversize requests: errors, and the connection goes on.
expect_err(lambda: h.pread(4096, size - 2048), errno.EINVAL, "read past the end")
expect_err(lambda: h.pwrite(b"x" * 4096, size), errno.ENOSPC, "write past the end")
expect_err(lambda: h.zero(4096, size + 4096), errno.ENOSPC, "zero past the end")
expect_err(lambda: h.trim(1, size), errno.ENOSPC, "trim past the end")
expect_err(lambda: h.pread((32 << 20) + 1, 0), errno.EINVAL, "read over 32 MiB")
expect_err(lambda: h.pwrite(b"y" * ((32 << 20) + 4096), 0), errno.EINVAL, "write over 32 MiB")
expect_err(lambda: h.block_status(4096, size, lambda *a: 0), errno.EINVAL, "status past end")
assert h.pread(16, 1 << 20) == b"\xcd" * 16  # still serving

# DF reads: one data chunk, even over holes.
buf = h.pread(1 << 20, 512 << 10, nbd.CMD_FLAG_DF)
assert buf[:512 << 10] == bytes(512 << 10) and buf[512 << 10:] == b"\xcd" * (512 << 10)
chunks = []
def chunk(sub, off, status, err):
    chunks.append((off, len(sub), status))
    return 0
h.pread_structured(1 << 20, 512 << 10, chunk, nbd.CMD_FLAG_DF)
assert len(chunks) == 1 and chunks[0][2] == nbd.READ_DATA, chunks
# Without DF a sparse read comes back as hole + data chunks.
chunks.clear()
h.pread_structured(1 << 20, 512 << 10, chunk)
kinds = sorted(c[2] for c in chunks)
assert nbd.READ_HOLE in kinds and nbd.READ_DATA in kinds, chunks

# Block status with REQ_ONE: exactly one extent.
got = []
h.block_status(size, 0, lambda ctx, off, ents, err: got.append(list(ents)) or 0,
               nbd.CMD_FLAG_REQ_ONE)
assert len(got) == 1 and len(got[0]) == 2, got
assert got[0] == [4096, 0], got  # qemu-img create wrote the first 4 KiB
got.clear()
h.block_status(size, 0, lambda ctx, off, ents, err: got.append(list(ents)) or 0)
assert got[0][:6] == [4096, 0, (1 << 20) - 4096, 3, 1 << 20, 0], got

# Write with FUA, FAST_ZERO, NO_HOLE zeroing, trim, cache, flush.
h.pwrite(b"\x42" * 4096, 4 << 20, nbd.CMD_FLAG_FUA)
assert h.pread(4096, 4 << 20) == b"\x42" * 4096
try:
    h.zero(1 << 20, 1 << 20, nbd.CMD_FLAG_FAST_ZERO)
    assert h.pread(1 << 20, 1 << 20) == bytes(1 << 20)
except nbd.Error as e:
    assert e.errno in ("ENOTSUP", "EOPNOTSUPP"), e  # allowed: not fast here
h.zero(65536, 6 << 20, nbd.CMD_FLAG_NO_HOLE)
assert h.pread(65536, 6 << 20) == bytes(65536)
h.trim(65536, 0, nbd.CMD_FLAG_FUA)
h.cache(1 << 20, 0)
h.flush()
# A flag that does not belong to the command.
expect_err(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA), errno.EINVAL, "FUA on a read")
h.shutdown()
PYEOF

# Raw sockets: malformed handshakes and requests.
$PY - "$S" <<'PYEOF' || fail "raw socket cases"
import socket, struct, sys

sock = sys.argv[1]
MAGIC, IHAVEOPT, REPMAGIC = 0x4e42444d41474943, 0x49484156454f5054, 0x3e889045565a9

def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    hdr = recvn(s, 18)
    m, v, fl = struct.unpack(">QQH", hdr)
    assert m == MAGIC and v == IHAVEOPT and fl & 1
    return s

def recvn(s, n):
    b = b""
    while len(b) < n:
        k = s.recv(n - len(b))
        if not k:
            raise EOFError("closed after %d of %d bytes" % (len(b), n))
        b += k
    return b

def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

def opt(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)

def reply(s):
    m, o, t, l = struct.unpack(">QIII", recvn(s, 20))
    assert m == REPMAGIC, hex(m)
    return o, t, recvn(s, l)

def go(s, name=b"disk"):
    opt(s, 7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    while True:
        o, t, d = reply(s)
        if t == 1:
            return
        assert t == 3, hex(t)

ERR = 1 << 31
# Client flags without fixed newstyle: hang up.
s = conn(); s.sendall(struct.pack(">I", 0)); assert closed(s)
# Unknown client flag bits: hang up.
s = conn(); s.sendall(struct.pack(">I", 0x80000001)); assert closed(s)
# Bad option magic: hang up.
s = conn(); s.sendall(struct.pack(">I", 3)); s.sendall(struct.pack(">QII", 1, 7, 0)); assert closed(s)
# Unknown option: ERR_UNSUP and the negotiation goes on.
s = conn(); s.sendall(struct.pack(">I", 3))
opt(s, 0x1234, b"abc"); o, t, d = reply(s); assert o == 0x1234 and t == ERR | 1, hex(t)
# Option data over the limit: ERR_TOO_BIG, still going.
opt(s, 6, b"\0" * 100000); o, t, d = reply(s); assert t == ERR | 9, hex(t)
# GO whose name length runs past the data: ERR_INVALID.
opt(s, 7, struct.pack(">I", 1000) + b"disk"); o, t, d = reply(s); assert t == ERR | 3, hex(t)
# Meta context without structured replies: ERR_INVALID.
opt(s, 10, struct.pack(">I", 4) + b"disk" + struct.pack(">I", 0)); o, t, d = reply(s)
assert t == ERR | 3, hex(t)
# STARTTLS with TLS off: ERR_UNSUP.
opt(s, 5); o, t, d = reply(s); assert t == ERR | 1, hex(t)
go(s)
# Transmission: unknown command and bad flags get EINVAL, reads past the end too.
def req(s, typ, off, ln, flags=0, handle=7, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, handle, off, ln) + payload)
def simple(s):
    m, e, h = struct.unpack(">IIQ", recvn(s, 16))
    assert m == 0x67446698, hex(m)
    return e, h
req(s, 99, 0, 0); assert simple(s) == (22, 7)
req(s, 0, 0, 512, flags=0x80); assert simple(s)[0] == 22
req(s, 0, 8 << 20, 1); assert simple(s)[0] == 22
req(s, 0, 2**64 - 512, 1024); assert simple(s)[0] == 22
req(s, 7, 0, 4096); assert simple(s)[0] == 22  # no meta context negotiated
# (4 MiB holds 0x42, written with FUA by the nbdsh part.)
req(s, 0, 4 << 20, 4, handle=9); e, h = simple(s); assert (e, h) == (0, 9); assert recvn(s, 4) == b"\x42" * 4
# Bad request magic: hang up.
s.sendall(b"\xde\xad\xbe\xef" + b"\0" * 24); assert closed(s)
# EXPORT_NAME of an unknown export: hang up.
s = conn(); s.sendall(struct.pack(">I", 3)); opt(s, 1, b"nosuch"); assert closed(s)
# A client that vanishes mid-header, mid-payload, or with replies unread.
s = conn(); s.sendall(struct.pack(">I", 3)); go(s); s.sendall(b"\x25\x60"); s.close()
s = conn(); s.sendall(struct.pack(">I", 3)); go(s); req(s, 1, 0, 1 << 20); s.sendall(b"z" * 1000); s.close()
s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
for i in range(64):
    req(s, 0, 0, 1 << 20, handle=i)
s.close()
# A half-sent option.
s = conn(); s.sendall(struct.pack(">I", 3)); s.sendall(struct.pack(">QI", IHAVEOPT, 7)); s.close()
# NBD_OPT_ABORT: acknowledged, then closed.
s = conn(); s.sendall(struct.pack(">I", 3)); opt(s, 2); o, t, d = reply(s); assert t == 1; assert closed(s)
# Still alive and well.
s = conn(); s.sendall(struct.pack(">I", 3)); go(s)
req(s, 0, 4 << 20, 8, handle=11); assert simple(s) == (0, 11); assert recvn(s, 8) == b"\x42" * 8
req(s, 2, 0, 0); assert closed(s)
PYEOF

nbdinfo "$(uri "$S" disk)" >/dev/null || fail "server died"
stop_nbd

# FAST_ZERO on an image that can only zero by writing: ENOTSUP, nothing
# written; without FAST_ZERO the zeroing happens.
start_nbd "$S" -t --image-opts "driver=raw,file.driver=memory,file.size=1M,file.zeroes=off"
$PY - "$(uri "$S")" <<'PYEOF' || fail "FAST_ZERO refusal"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
assert h.can_fast_zero()
h.pwrite(b"a" * 65536, 0)
try:
    h.zero(65536, 0, nbd.CMD_FLAG_FAST_ZERO)
    sys.exit("FAST_ZERO fell back to writing")
except nbd.Error as e:
    assert e.errno in ("ENOTSUP", "EOPNOTSUPP"), e
assert h.pread(65536, 0) == b"a" * 65536
h.zero(65536, 0)
assert h.pread(65536, 0) == bytes(65536)
PYEOF
stop_nbd
echo ok
