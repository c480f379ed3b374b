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
