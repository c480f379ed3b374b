#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-vhdx-log: the log GUID and log of an image whose writer
# (vdk-nbd fed by qemu-io) was killed after flushed writes, and of images
# without a log.
set -eu
out=${1:?usage: $0 OUTDIR}
mkdir -p "$out"
. "$(dirname "$0")/fuzz-vhdx-common.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"; [ -z "${pid:-}" ] || kill -9 "$pid" 2>/dev/null || true' EXIT
vhdx_images "$tmp"
guid_and_log() { # IMG OUT
    /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import struct, sys
f = open(sys.argv[1], 'rb').read()
h = max((struct.unpack_from('<Q', f, o + 8)[0], o) for o in (65536, 131072))[1]
log = f[1 << 20:(1 << 20) + (64 << 10)]
open(sys.argv[2], 'wb').write(f[h + 48:h + 64] + log)
PYEOF
}
nbd=${VDK_BUILD:-}/nbd-server/vdk-nbd
if [ -n "${VDK_BUILD:-}" ] && [ -x "$nbd" ]; then
    sock=$tmp/s
    "$nbd" -t -f vhdx -k "$sock" "$tmp/data.vhdx" & pid=$!
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
    qemu-io -f raw "nbd+unix:///?socket=$sock" -c "write -P 0x55 1M 2M" -c "write -P 0x66 6M 4k" \
        -c flush >/dev/null
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
fi
for f in "$tmp"/*.vhdx; do
    guid_and_log "$f" "$out/$(basename "$f" .vhdx).bin"
done
