#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-nbd: what real clients (nbdinfo, nbdcopy, qemu-img,
# qemu-io, nbdsh) send to an NBD server, recorded by a small relay in front
# of nbdkit's memory plugin.  One file per client connection.
set -eu
out=$1
tmp=$(mktemp -d)
trap 'kill $relay $kit 2>/dev/null || true; rm -rf "$tmp"' EXIT
nbdkit -f -U "$tmp/kit.sock" memory 1M &
kit=$!
/usr/bin/python3 - "$tmp/relay.sock" "$tmp/kit.sock" "$out" <<'PYEOF' &
import os, socket, sys, threading
listen, target, out = sys.argv[1:4]
srv = socket.socket(socket.AF_UNIX); srv.bind(listen); srv.listen(16)
n = 0
def pump(a, b, rec):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            if rec is not None:
                rec.write(d); rec.flush()
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
while True:
    c, _ = srv.accept()
    n += 1
    up = socket.socket(socket.AF_UNIX); up.connect(target)
    rec = open(os.path.join(out, "client-%03d" % n), "wb")
    threading.Thread(target=pump, args=(c, up, rec), daemon=True).start()
    threading.Thread(target=pump, args=(up, c, None), daemon=True).start()
PYEOF
relay=$!
for s in "$tmp/kit.sock" "$tmp/relay.sock"; do
    i=0; while [ ! -S "$s" ]; do sleep 0.05; i=$((i + 1)); [ $i -lt 400 ] || exit 1; done
done
U="nbd+unix:///?socket=$tmp/relay.sock"
nbdinfo --json "$U" >/dev/null
nbdinfo --list "$U" >/dev/null
nbdinfo --map "$U" >/dev/null
head -c 300000 /dev/urandom >"$tmp/data"
truncate -s 1M "$tmp/data"
nbdcopy "$tmp/data" "$U"
nbdcopy "$U" "$tmp/back"
qemu-io -f raw -c 'write -P 7 1000 70000' -c 'read 0 4096' -c 'write -z 512k 64k' \
    -c 'discard 768k 64k' -c flush "$U" >/dev/null
qemu-img info "$U" >/dev/null
/usr/bin/python3 - "$U" <<'PYEOF'
import sys, nbd
h = nbd.NBD()
h.add_meta_context("base:allocation")
h.add_meta_context("qemu:allocation-depth")
h.connect_uri(sys.argv[1])
h.set_strict_mode(0)  # send DF even if the relayed server lacks it
h.pwrite(b"x" * 4097, 3, nbd.CMD_FLAG_FUA)
h.pread(8192, 0, nbd.CMD_FLAG_DF)
h.block_status(1 << 20, 0, lambda *a: 0, nbd.CMD_FLAG_REQ_ONE)
h.zero(65536, 131072, nbd.CMD_FLAG_NO_HOLE)
h.trim(4096, 8192)
h.cache(65536, 0)
h.flush()
h.shutdown()
PYEOF
sleep 0.2
# Option and request sequences the structure-aware mutator
# (fuzz-nbd-mutator.h) makes, kept as seeds: lengths that disagree with
# the data, GO for an unknown export then the right one, meta contexts
# asked twice, a write whose payload is cut short, requests at the edges.
/usr/bin/python3 - "$out" <<'PYEOF'
import os, struct, sys
out = sys.argv[1]
def opt(code, data=b"", length=None):
    return b"IHAVEOPT" + struct.pack(">II", code, len(data) if length is None else length) + data
def name(s):
    return struct.pack(">I", len(s)) + s
def go(export, infos=()):
    return name(export) + struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos)
def meta(export, *queries):
    return name(export) + struct.pack(">I", len(queries)) + b"".join(name(q) for q in queries)
def req(typ, off, ln, flags=0, payload=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, typ, 7, off, ln) + payload
flags = struct.pack(">I", 3)
seeds = {
    "opt-length-short": flags + opt(6, go(b"", (0, 1, 2, 3)), 5) + opt(7, go(b"")) + req(0, 0, 512),
    "opt-length-long": flags + opt(9, meta(b"", b"base:allocation"), 400),
    "go-unknown-then-good": flags + opt(7, go(b"nope")) + opt(8) + opt(7, go(b"", (3,)))
        + req(1, 1000, 600, 1, bytes(600)) + req(7, 0, 1 << 20, 8) + req(2, 0, 0),
    "meta-twice": flags + opt(8) + opt(10, meta(b"", b"base:allocation", b"qemu:allocation-depth"))
        + opt(10, meta(b"ro", b"base:", b"qemu:")) + opt(9, meta(b"", b"")) + opt(7, go(b"ro"))
        + req(7, 0, 1 << 20) + req(1, 0, 512, 0, bytes(512)) + req(2, 0, 0),
    "write-cut-short": flags + opt(7, go(b"")) + req(1, 4096, 4096, 0, bytes(100)),
    "edges": flags + opt(1, b"") + req(0, (1 << 20) - 1, 2) + req(4, 1 << 20, 0)
        + req(6, (1 << 20) - 512, 512, 16) + req(5, 0, 0xffffffff) + req(3, 0, 0, 1)
        + req(0, 1 << 63, 512) + req(9, 0, 0) + req(2, 0, 0),
    "abort-then-more": flags + opt(3) + opt(2) + opt(7, go(b"")),
}
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v)
PYEOF
