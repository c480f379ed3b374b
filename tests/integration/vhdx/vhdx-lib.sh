# SPDX-License-Identifier: MIT
# Helpers for the VHDX tests (sourced after lib.sh and fmt-lib.sh).
#   vhdx_diff_mask Q V   differing bytes of two new images outside what
#                        may differ (creator, header GUIDs, sequence
#                        numbers and checksums, page 83 data); prints them
#   pyread IMG OUT [PARENT...]  guest bytes as libvhdi (pyvhdi) reads them
#   make_partial IMG     block 0 (1 MiB, written whole) of a differencing
#                        IMG becomes PARTIALLY_PRESENT, as Hyper-V writes
#                        them, with sectors 0-7 and 100-103 present
#   kill_writer IMG CMDS...  serve IMG with vdk-nbd, run qemu-io commands
#                        (with a flush) over NBD, then SIGKILL the server
export FMT=vhdx

vhdx_diff_mask() {
    local meta
    meta=$($PY - "$1" <<'PYEOF'
import struct, sys
f = open(sys.argv[1], 'rb').read()
n = struct.unpack_from('<I', f, 196608 + 8)[0]
for i in range(n):
    e = 196608 + 16 + 32 * i
    if f[e:e + 4] == bytes.fromhex('06a27c8b'):
        print(struct.unpack_from('<Q', f, e + 16)[0])
PYEOF
)
    cmp -l "$1" "$2" | awk -v m="$meta" '{ o = $1 - 1
        if (o >= 8 && o < 65536) next
        if (o >= 65536 + 4 && o < 65536 + 48) next
        if (o >= 131072 + 4 && o < 131072 + 48) next
        if (o >= m + 65536 + 16 && o < m + 65536 + 32) next
        print o }'
}

pyread() {
    /usr/bin/python3 - "$@" <<'PYEOF'
import sys, pyvhdi
img, out = sys.argv[1], sys.argv[2]
f = pyvhdi.file(); f.open(img)
chain = [f]                    # kept alive while f reads through them
for name in sys.argv[3:]:      # the parent, its parent, ...
    p = pyvhdi.file(); p.open(name); chain[-1].set_parent(p); chain.append(p)
with open(out, 'wb') as o:
    off = 0
    while off < f.media_size:
        n = min(1 << 20, f.media_size - off)
        o.write(f.read_buffer_at_offset(n, off)); off += n
PYEOF
}

kill_writer() {
    local img=$1; shift
    local sock="$T/nbd.sock" args=() c
    rm -f "$sock"
    for c in "$@"; do args+=(-c "$c"); done
    "$VDK_NBD" -t -f vhdx -k "$sock" "$img" & local pid=$!
    local i=0
    while [ ! -S "$sock" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    qemu-io -f raw "nbd+unix:///?socket=$sock" "${args[@]}" -c flush >/dev/null ||
        fail "qemu-io over NBD failed"
    kill -9 $pid
    wait $pid 2>/dev/null || true
}

# vhdx_fix_sums FILE: recompute the CRC-32C of both headers and both
# region tables after a test patched them
vhdx_fix_sums() {
    $PY - "$1" <<'PYEOF'
import struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    T.append(c)
def crc(b):
    c = 0xffffffff
    for x in b:
        c = T[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
with open(sys.argv[1], 'r+b') as f:
    for off, ln in ((65536, 4096), (131072, 4096), (196608, 65536), (262144, 65536)):
        f.seek(off); b = bytearray(f.read(ln)); b[4:8] = b'\0\0\0\0'
        f.seek(off + 4); f.write(struct.pack('<I', crc(bytes(b))))
PYEOF
}

# field offsets of a new image's metadata and BAT regions
vhdx_region() { # FILE bat|meta -> offset
    $PY - "$1" "$2" <<'PYEOF'
import struct, sys
f = open(sys.argv[1], 'rb').read()
want = {'bat': '6677c22d', 'meta': '06a27c8b'}[sys.argv[2]]
n = struct.unpack_from('<I', f, 196608 + 8)[0]
for i in range(n):
    e = 196608 + 16 + 32 * i
    if f[e:e + 4].hex() == want:
        print(struct.unpack_from('<Q', f, e + 16)[0])
PYEOF
}

make_partial() {
    $PY - "$1" "$(vhdx_region "$1" bat)" <<'PYEOF'
import struct, sys
f, bat = sys.argv[1], int(sys.argv[2])
with open(f, 'r+b') as fh:
    fh.seek(0, 2); end = fh.tell()
    end = (end + (1 << 20) - 1) & ~((1 << 20) - 1)
    bm = bytearray(1 << 20)
    bm[0] = 0xff                      # sectors 0-7
    bm[12] = 0xf0                     # sectors 100-103
    fh.seek(end); fh.write(bm)
    fh.seek(bat); e = struct.unpack('<Q', fh.read(8))[0]
    fh.seek(bat); fh.write(struct.pack('<Q', (e & ~7) | 7))
    chunk_ratio = (1 << 23) * 512 // (1 << 20)
    fh.seek(bat + 8 * chunk_ratio); fh.write(struct.pack('<Q', end | 6))
PYEOF
}
