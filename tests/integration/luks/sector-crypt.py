#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Independent dm-crypt sector decryption for the LUKS tests.

    sector-crypt.py MODE KEYHEX IV_SECTOR SECTOR_SIZE [-e] < in > out

MODE: xts-plain64, cbc-plain64, cbc-plain, cbc-essiv:sha256.  Every AES
operation is done by `openssl enc` (which has no XTS, so XTS is built here
from AES-ECB and the GF(2^128) tweak doubling of IEEE 1619).  IVs count
512-byte units: sector k of the input uses IV_SECTOR + k * SECTOR_SIZE/512.
With -e it encrypts instead (to lay a payload under a cryptsetup header).
"""
import hashlib
import subprocess
import sys


def ecb(key, data, decrypt):
    bits = len(key) * 8
    cmd = ["openssl", "enc", "-aes-%d-ecb" % bits, "-nopad", "-K", key.hex()]
    if decrypt:
        cmd.insert(2, "-d")
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def cbc(key, iv, data, decrypt):
    bits = len(key) * 8
    cmd = ["openssl", "enc", "-d" if decrypt else "-e", "-aes-%d-cbc" % bits, "-nopad",
           "-K", key.hex(), "-iv", iv.hex()]
    return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def xts_all(key, ivs, data, ss, decrypt):
    """All sectors in two openssl calls: tweaks, then the data."""
    k1, k2 = key[: len(key) // 2], key[len(key) // 2:]
    t0 = ecb(k2, b"".join(ivs), False)
    tweaks = []
    for k in range(len(ivs)):
        t = int.from_bytes(t0[16 * k:16 * k + 16], "little")
        for _ in range(ss // 16):
            tweaks.append(t.to_bytes(16, "little"))
            t <<= 1
            if t >> 128:
                t = (t & ((1 << 128) - 1)) ^ 0x87
    tw = b"".join(tweaks)
    return xor(ecb(k1, xor(data, tw), decrypt), tw)


def main():
    mode, keyhex, first, ss = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    dec = len(sys.argv) < 6 or sys.argv[5] != "-e"
    key = bytes.fromhex(keyhex)
    data = sys.stdin.buffer.read()
    out = []
    n = len(data) // ss
    if mode == "xts-plain64":
        ivs = [(first + k * (ss // 512)).to_bytes(16, "little") for k in range(n)]
        sys.stdout.buffer.write(xts_all(key, ivs, data[:n * ss], ss, dec))
        return
    for k in range(n):
        sector = first + k * (ss // 512)
        block = data[k * ss:(k + 1) * ss]
        if mode == "cbc-plain64":
            out.append(cbc(key, sector.to_bytes(16, "little"), block, dec))
        elif mode == "cbc-plain":
            out.append(cbc(key, (sector & 0xFFFFFFFF).to_bytes(16, "little"), block, dec))
        elif mode == "cbc-essiv:sha256":
            salt = hashlib.sha256(key).digest()
            iv = ecb(salt, sector.to_bytes(16, "little"), False)
            out.append(cbc(key, iv, block, dec))
        else:
            sys.exit("unknown mode " + mode)
    sys.stdout.buffer.write(b"".join(out))


main()
