#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write a VMDK seSparse image (descriptor + extent) for the tests.

No tool here writes seSparse (ESXi makes them for snapshots on VMFS6), so
the tests build one from the layout qemu's driver reads (see
formats/vmdk/vmdk-sesparse.c): const header, volatile header, grain
directory of u64 entries, grain tables of 4096 u64 entries, grains of
4 KiB.  Grain states are chosen at random (seeded): unallocated, data,
zero and unmapped; tables and grains are placed out of order, some grains
past index 4096 so both halves of the packed grain index are used.

  mk-sesparse.py DESC SECTORS [--seed N] [--parent NAME --parent-cid CID]
                 [--parent-raw RAW] [--expect RAW] [--layout] [--compact]

writes DESC and DESC's base name + "-sesparse.vmdk"; --expect writes the
guest data it holds (over --parent-raw's data, or zeros); --layout prints
byte offsets (gd, a data GT entry, the grain table area) for the tests
that damage the image; --compact keeps grain indexes small (a small file,
for fuzz seeds).
"""
import argparse
import os
import random
import struct

SECTOR = 512
GRAIN = 8 * SECTOR
GTES = 4096
GT_BYTES = GTES * 8


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('desc')
    ap.add_argument('sectors', type=int)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--parent')
    ap.add_argument('--parent-cid', default='ffffffff')
    ap.add_argument('--parent-raw')
    ap.add_argument('--expect')
    ap.add_argument('--layout', action='store_true')
    ap.add_argument('--compact', action='store_true')
    a = ap.parse_args()

    rng = random.Random(a.seed)
    cap = a.sectors
    grains = (cap * SECTOR + GRAIN - 1) // GRAIN
    gd_entries = (grains + GTES - 1) // GTES

    # States: 0 unallocated, 1 unmapped, 2 zero, 3 data.  The first table
    # is left without a GT when there are several (whole 16 MiB holes).
    state = [0] * grains
    for g in range(grains):
        if gd_entries > 1 and g < GTES:
            continue
        x = rng.random()
        state[g] = 3 if x < 0.45 else 2 if x < 0.55 else 1 if x < 0.6 else 0
    data_grains = [g for g in range(grains) if state[g] == 3]
    # Grain slots: out of order, some past 4096 (the index's high part).
    nslots = len(data_grains) + 64
    if not a.compact:
        nslots = max(nslots, GTES + len(data_grains) // 2 + 64)
    slots = rng.sample(range(nslots), len(data_grains))
    if data_grains and max(slots) < GTES and not a.compact:
        slots[0] = GTES + 7
    tables = [i for i in range(gd_entries) if any(state[i * GTES:(i + 1) * GTES])]
    gt_slots = rng.sample(range(len(tables) + 3), len(tables))

    # Layout in sectors.
    vh_off, jh_off, j_off = 1, 2, 4
    gd_off = 8
    gd_size = max(1, (gd_entries * 8 + SECTOR - 1) // SECTOR)
    gts_off = gd_off + gd_size + 8
    gts_size = (len(tables) + 3) * (GT_BYTES // SECTOR)
    fb_off = gts_off + gts_size
    fb_size = 8
    bm_off = fb_off + fb_size
    bm_size = 8
    grains_off = (bm_off + bm_size + 7) // 8 * 8
    grains_size = nslots * 8
    hdr = struct.pack('<26Q', 0xcafebabe, 0x0000000200000001, cap, 8, 64, 0,
                      0, 0, 0, 0,
                      vh_off, 1, jh_off, 2, j_off, 4,
                      gd_off, gd_size, gts_off, gts_size,
                      fb_off, fb_size, bm_off, bm_size,
                      grains_off, grains_size)
    hdr += bytes(SECTOR - len(hdr))
    vh = struct.pack('<4Q', 0xcafecafe, 0, 1, 0) + bytes(SECTOR - 32)

    base = a.desc[:-5] if a.desc.endswith('.vmdk') else a.desc
    ext = base + '-sesparse.vmdk'
    gd = [0] * gd_entries
    layout = {}
    if a.parent_raw:
        with open(a.parent_raw, 'rb') as f:
            expect = bytearray(f.read(cap * SECTOR))
        expect += bytes(cap * SECTOR - len(expect))
    else:
        expect = bytearray(cap * SECTOR)
    with open(ext, 'wb') as f:
        f.write(hdr)
        f.seek(vh_off * SECTOR)
        f.write(vh)
        slot_of = dict(zip(data_grains, slots))
        for t, i in zip(gt_slots, tables):
            gd[i] = 0x1000000000000000 | t
            gt = [0] * GTES
            for k in range(GTES):
                g = i * GTES + k
                if g >= grains or state[g] == 0:
                    continue
                lo = g * GRAIN
                hi = min(lo + GRAIN, cap * SECTOR)
                if state[g] in (1, 2):
                    gt[k] = state[g] << 60
                    expect[lo:hi] = bytes(hi - lo)
                    continue
                idx = slot_of[g]
                gt[k] = (3 << 60) | (idx & 0xfff) << 48 | idx >> 12
                blob = rng.randbytes(GRAIN)
                f.seek(grains_off * SECTOR + idx * GRAIN)
                f.write(blob)
                expect[lo:hi] = blob[:hi - lo]
                if 'gte' not in layout:
                    layout['gte'] = (gts_off * SECTOR + t * GT_BYTES + 8 * k)
            f.seek(gts_off * SECTOR + t * GT_BYTES)
            f.write(struct.pack('<%dQ' % GTES, *gt))
        f.seek(gd_off * SECTOR)
        f.write(struct.pack('<%dQ' % gd_entries, *gd))
        # the file ends after the last grain slot in use
        end = grains_off * SECTOR + (max(slots) + 1 if slots else 0) * GRAIN
        f.truncate(max(end, f.tell()))
    layout['gd'] = gd_off * SECTOR
    layout['gd_used'] = gd_off * SECTOR + 8 * tables[0] if tables else 0
    layout['gts'] = gts_off * SECTOR

    cid = '%08x' % rng.getrandbits(32)
    parent = ''
    if a.parent:
        parent = 'parentFileNameHint="%s"\n' % a.parent
    with open(a.desc, 'w') as f:
        f.write('# Disk DescriptorFile\nversion=1\nencoding="UTF-8"\n'
                'CID=%s\nparentCID=%s\nisNativeSnapshot="no"\n'
                'createType="seSparse"\n%s\n# Extent description\n'
                'RW %d SESPARSE "%s"\n\n# The Disk Data Base\n#DDB\n\n'
                'ddb.adapterType = "lsilogic"\nddb.virtualHWVersion = "14"\n'
                'ddb.grain = "8"\n'
                % (cid, a.parent_cid if a.parent else 'ffffffff', parent, cap,
                   os.path.basename(ext)))
    if a.expect:
        with open(a.expect, 'wb') as f:
            f.write(expect)
    if a.layout:
        print(' '.join('%s=%d' % kv for kv in sorted(layout.items())))


if __name__ == '__main__':
    main()
