#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Rewrite the JSON of a LUKS2 header for the bad-header tests.

    luks2-edit.py IMAGE 'PYTHON STATEMENT on j' [primary|secondary|both]
    luks2-edit.py IMAGE --raw 'TEXT' [copies]      (JSON area := TEXT)
    luks2-edit.py IMAGE --break-csum [copies]      (damage the checksum only)

The checksum (sha256 over the whole header area with the csum field zeroed)
is recomputed, so the damage is in the metadata, not the checksum.
"""
import hashlib
import json
import struct
import sys

img, what = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
raw = None
if what == "--raw":
    raw, rest = rest[0], rest[1:]
copies = rest[0] if rest else "both"

with open(img, "r+b") as f:
    hdr_size = struct.unpack(">Q", f.read(16)[8:16])[0]
    offs = {"primary": [0], "secondary": [hdr_size], "both": [0, hdr_size]}[copies]
    for off in offs:
        f.seek(off)
        area = bytearray(f.read(hdr_size))
        if what == "--break-csum":
            area[448] ^= 0xFF
        else:
            if raw is not None:
                text = raw.encode()
            else:
                j = json.loads(area[4096:].rstrip(b"\0"))
                exec(what, {"j": j})
                text = json.dumps(j, separators=(",", ":")).encode()
            area[4096:] = text + b"\0" * (hdr_size - 4096 - len(text))
            area[448:512] = b"\0" * 64
            area[448:480] = hashlib.sha256(bytes(area)).digest()
        f.seek(off)
        f.write(area)
