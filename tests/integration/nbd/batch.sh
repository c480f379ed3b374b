#!/bin/bash
# SPDX-License-Identifier: MIT
# Batches (nbd-server/batch.c): many small reads and writes in flight at
# once arrive together and run as batches with their replies in one send.
# Every reply must still match its request: data of reads, writes that
# land, and errors for exactly the requests that fail (out of range, bad
# flags, an injected EIO from the fault filter, a read-only export),
# with structured and with simple replies.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
head -c 4M /dev/urandom >"$T/a.raw"
cp "$T/a.raw" "$T/ref.raw"

run() { # what writable
    $PY - "$(uri "$S")" "$T/ref.raw" "$1" "$2" <<'PYEOF' || fail "$1"
import errno, random, sys
import nbd

uri, ref, what, writable = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
data = bytearray(open(ref, "rb").read())
bad_lo, bad_hi = 1 << 20, (1 << 20) + 8192   # the fault filter's range
SLOT = 64 << 10
rng = random.Random(7)
for structured in (True, False):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.connect_uri(uri)
    h.set_strict_mode(0)      # let bad requests reach the server
    size = h.get_size()
    for rnd in range(20):
        # Requests in flight together never overlap: their order is free.
        slots = rng.sample(range(size // SLOT), 48)
        cmds = []
        for s in slots:
            k = rng.random()
            ln = rng.choice([512, 4096, 8192, 32768, 40960])
            off = s * SLOT + rng.randrange(0, SLOT - ln + 1) // 512 * 512
            hit = off < bad_hi and off + ln > bad_lo
            if k < 0.05 and s == size // SLOT - 1:
                off, ln = size - 1024, 4096          # runs past the end
                buf = nbd.Buffer(ln)
                cmds.append(("read", h.aio_pread(buf, off), off, ln, None, "EINVAL"))
            elif k < 0.5:
                buf = nbd.Buffer(ln)
                cmds.append(("read", h.aio_pread(buf, off), off, ln, buf,
                             "EIO" if hit else None))
            else:
                b = bytes(rng.randrange(256) for _ in range(16)) * (ln // 16)
                c = h.aio_pwrite(b, off)
                if not writable:
                    want = "EPERM"
                elif hit:
                    want = "EIO"     # a failed write lands nowhere
                else:
                    want = None
                    data[off:off + ln] = b
                cmds.append(("write", c, off, ln, None, want))
        while h.aio_in_flight() > 0:
            h.poll(-1)
        for kind, c, off, ln, buf, want in cmds:
            got = None
            try:
                h.aio_command_completed(c)
            except nbd.Error as e:
                got = e.errno
            if got != want:
                sys.exit("%s: %s at %d+%d: error %s, wanted %s" % (what, kind, off, ln, got, want))
            if kind == "read" and want is None and buf.to_bytearray() != data[off:off + ln]:
                sys.exit("%s: read at %d+%d: wrong data" % (what, off, ln))
    # Everything outside the faulted range reads back as written.
    for off in range(0, size, 1 << 20):
        if not (off < bad_hi and off + (1 << 20) > bad_lo):
            assert h.pread(1 << 20, off) == data[off:off + (1 << 20)], (what, off)
    h.shutdown()
PYEOF
}

opts="driver=fault,ops=read|write,errno=EIO,offset=1M,length=8K,file.driver=raw,file.file.filename=$T/a.raw"
start_nbd "$S" -t --image-opts "$opts"
run "writable export with a faulted range" 1
stop_nbd
cp "$T/a.raw" "$T/ref.raw"   # what the writable run left
start_nbd "$S" -t -r --image-opts "$opts"
run "read-only export with a faulted range" 0
stop_nbd
echo "batch: ok"
