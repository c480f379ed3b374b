#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-virtq: well-formed rings holding one virtio-blk request
# each (read, write, flush, get-id, discard, write-zeroes), laid out as a
# virtio 1.x driver does (virtio spec 2.7, 5.2.6).
set -eu
/usr/bin/python3 - "$1" <<'PY'
import struct, sys
out = sys.argv[1]
DESC, AVAIL, USED = 0x1000, 0x2000, 0x3000
def seed(name, rtype, sector, data_len, data_write, payload=b"", ro=0):
    mem = bytearray(0x8000)
    descs = [(0x4000, 16, 1)]
    if data_len:
        descs.append((0x5000, data_len, 1 | (2 if data_write else 0)))
    descs.append((0x7000, 1, 2))
    for i, (addr, ln, fl) in enumerate(descs):
        nxt = i + 1 if fl & 1 else 0
        struct.pack_into("<QIHH", mem, DESC + 16 * i, addr, ln, fl, nxt)
    struct.pack_into("<HHH", mem, AVAIL, 0, 1, 0)
    struct.pack_into("<IIQ", mem, 0x4000, rtype, 0, sector)
    mem[0x5000:0x5000 + len(payload)] = payload
    hdr = bytes([3 | (0x80 if ro else 0)]) + struct.pack("<HHHB", DESC // 16,
                                                         AVAIL // 2, USED // 4, 0)
    open(f"{out}/{name}", "wb").write(hdr + bytes(mem))
seed("read", 0, 8, 4096, True)
seed("write", 1, 16, 1024, False, b"\xc3" * 1024)
seed("write-ro", 1, 16, 512, False, b"\x11" * 512, ro=1)
seed("flush", 4, 0, 0, False)
seed("get-id", 8, 0, 20, True)
seed("discard", 11, 0, 16, False, struct.pack("<QII", 8, 16, 0))
seed("zeroes", 13, 0, 16, False, struct.pack("<QII", 64, 128, 1))
seed("past-end", 0, 2047, 1024, True)
PY
