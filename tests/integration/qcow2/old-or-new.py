# SPDX-License-Identifier: MIT
# old-or-new.py OLD NEW GOT [SAME]: every 512-byte sector of the raw dump
# GOT must equal the same sector of OLD (the guest view before an
# interrupted convert) or of NEW (the source); SAME, if given, must equal
# GOT byte for byte (the same image read by another tool).  Prints
# "old A new B" (sectors matching only one side) on success; on failure
# names the first bad sector.
import sys

SECTOR = 512
CHUNK = 1 << 16


def main():
    old_p, new_p, got_p = sys.argv[1:4]
    same_p = sys.argv[4] if len(sys.argv) > 4 else got_p
    only_old = only_new = 0
    with open(old_p, "rb") as fo, open(new_p, "rb") as fn, open(got_p, "rb") as fg, \
            open(same_p, "rb") as fs:
        pos = 0
        while True:
            o, n, g, s = fo.read(CHUNK), fn.read(CHUNK), fg.read(CHUNK), fs.read(CHUNK)
            if not (len(o) == len(n) == len(g) == len(s)):
                print(f"sizes differ near byte {pos}", file=sys.stderr)
                return 1
            if g != s:
                print(f"{got_p} and {same_p} differ near byte {pos}", file=sys.stderr)
                return 1
            if not o:
                break
            if g == n and g == o:
                pass
            elif g == n:
                only_new += sum(o[i:i + SECTOR] != n[i:i + SECTOR]
                                for i in range(0, len(g), SECTOR))
            elif g == o:
                only_old += sum(o[i:i + SECTOR] != n[i:i + SECTOR]
                                for i in range(0, len(g), SECTOR))
            else:
                for i in range(0, len(g), SECTOR):
                    gs, os_, ns = g[i:i + SECTOR], o[i:i + SECTOR], n[i:i + SECTOR]
                    if gs == ns:
                        only_new += gs != os_
                    elif gs == os_:
                        only_old += 1
                    else:
                        print(f"sector {(pos + i) // SECTOR} (byte {pos + i}) is "
                              f"neither old nor new content", file=sys.stderr)
                        return 1
            pos += len(g)
    print(f"old {only_old} new {only_new}")
    return 0


sys.exit(main())
