#!/bin/bash
# SPDX-License-Identifier: MIT
# A server that accepts connections and never speaks (on a unix socket and
# on TCP): vdk-img and vdk-nbd's nbd client driver give up after
# connect-timeout with a one-line error instead of hanging (qemu-img and
# nbdinfo wait for ever).  The default timeout is bounded too.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
cd "$T"
mute=
trap 'if [ -n "$mute" ]; then kill "$mute" 2>/dev/null || true; fi
      if [ -n "$NBD_PID" ]; then kill -KILL "$NBD_PID" 2>/dev/null || true; fi
      rm -rf "$T"' EXIT

# The silent server: listens on silent.sock and a free TCP port (written to
# port), accepts, keeps every connection open, never writes.
python3 - "$T" <<'PYEOF' &
import os, select, socket, sys
d = sys.argv[1]
u = socket.socket(socket.AF_UNIX)
u.bind(os.path.join(d, 'silent.sock')); u.listen(16)
t = socket.socket(); t.bind(('127.0.0.1', 0)); t.listen(16)
with open(os.path.join(d, 'port.tmp'), 'w') as f:
    f.write(str(t.getsockname()[1]))
os.rename(os.path.join(d, 'port.tmp'), os.path.join(d, 'port'))
held = []
while True:
    r, _, _ = select.select([u, t], [], [])
    for s in r:
        held.append(s.accept()[0])
PYEOF
mute=$!
i=0; until [ -s port ] && [ -S silent.sock ]; do
    i=$((i + 1)); [ "$i" -lt 600 ] || fail "silent server did not start"; sleep 0.05
done
unix="nbd+unix:///?socket=$T/silent.sock"
tcp="nbd://127.0.0.1:$(cat port)/"
re='no NBD handshake within 1 s \(connect-timeout\)'

for u in "$unix" "$tcp"; do
    expect_fail "$re" "$VDK_IMG" info --image-opts "driver=nbd,filename=$u,connect-timeout=1"
    expect_fail "$re" "$VDK_IMG" info --image-opts \
        "driver=raw,file.driver=nbd,file.filename=$u,file.connect-timeout=1"
    expect_fail "$re" "$VDK_IMG" convert --image-opts \
        "driver=raw,file.driver=nbd,file.filename=$u,file.connect-timeout=1" out.raw
    [ ! -e out.raw ] || fail "convert from a silent server left out.raw"
done
# vdk-nbd exporting what the silent server "serves" fails at start.
rc=0
"$VDK_NBD" -k "$T/v.sock" --image-opts \
    "driver=raw,file.driver=nbd,file.filename=$unix,file.connect-timeout=1" 2>v.err || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "vdk-nbd with a silent source exited $rc"
grep -qE "$re" v.err || { cat v.err; fail "vdk-nbd: no timeout message"; }
# Bad values are refused up front.
expect_fail "connect-timeout" "$VDK_IMG" info --image-opts \
    "driver=nbd,filename=$unix,connect-timeout=forever"
expect_fail "at most 86400" "$VDK_IMG" info --image-opts \
    "driver=nbd,filename=$unix,connect-timeout=100000"
# The plain URI uses the default (30 s): bounded as well.
expect_fail 'no NBD handshake within 30 s' "$VDK_IMG" info "$unix"
# And a real server still connects with a short timeout.
qemu-img create -q -f raw r.raw 1M
start_nbd "$T/ok.sock" -t -f raw r.raw  # -t: a one-shot server may be gone before stop_nbd
"$VDK_IMG" info --image-opts "driver=nbd,filename=nbd+unix:///?socket=$T/ok.sock,connect-timeout=1" |
    grep -q '^virtual size: 1 MiB' || fail "connect with connect-timeout=1"
stop_nbd
echo ok
