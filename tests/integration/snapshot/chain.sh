#!/bin/bash
# SPDX-License-Identifier: MIT
# External chains against qemu-img: create -b/-F (size from the backing
# file), info --backing-chain (human and JSON), commit [-b] [-d] [-p] and
# rebase (safe and -u) on identical inputs giving the same guest data as
# qemu-img's, chains mixing qcow2, raw and vpc, and clean errors for a
# missing backing file, a wrong backing format, a chain loop and a commit
# into a base another process holds.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/snapshot/common.sh"
cd "$T"

# A three-layer chain: BASE (format $1) <- mid.qcow2 <- top.qcow2, with
# data in every layer, some of it overlapping.
make_chain() {
    local bfmt=$1
    rm -rf "$T/src" && mkdir "$T/src"
    case $bfmt in
    raw)  qemu-img create -q -f raw src/base.img 6M ;;
    vpc)  qemu-img create -q -f vpc -o subformat=dynamic src/base.img 6M ;;
    *)    qemu-img create -q -f qcow2 src/base.img 6M ;;
    esac
    qio -f "$bfmt" -c 'write -P 1 0 4M' src/base.img
    # Size left out: taken from the backing file.
    (cd src && "$VDK_IMG" create -q -f qcow2 -b base.img -F "$bfmt" mid.qcow2) ||
        fail "create over $bfmt"
    (cd src && "$VDK_IMG" create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2) ||
        fail "create over qcow2"
    qio -c 'write -P 2 1M 2M' -c 'write -z 3M 64k' src/mid.qcow2
    qio -c 'write -P 3 2560k 1M' -c 'write -P 4 5M 64k' src/top.qcow2
    bsize=$(qemu-img info --output=json -f "$bfmt" src/base.img | json_field virtual-size)
    [ "$(qemu-img info --output=json src/top.qcow2 | json_field virtual-size)" = "$bsize" ] ||
        fail "size not taken from the $bfmt backing file"
    clean src/mid.qcow2 "create -b"
    clean src/top.qcow2 "create -b"
}

# Fresh copies of the chain for qemu-img (q/) and vdk (v/).
copies() { rm -rf q v && cp -r src q && cp -r src v; }

guest() { qemu-img convert -O raw "$1" "$2"; }

# Drop the "Format specific information" block of vpc images.
no_vpc_specific() {
    awk '/^file format:/ { vpc = ($3 == "vpc") }
         /^Format specific information:/ && vpc { skip = 1; next }
         skip && /^    / { next }
         { skip = 0; print }'
}
no_vpc_specific_json() {
    /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin)
for i in (d if isinstance(d, list) else [d]):
    if i.get("format") == "vpc": i.pop("format-specific", None)
print(json.dumps(d, indent=4))'
}

for bfmt in qcow2 raw vpc; do
    make_chain "$bfmt"
    guest src/top.qcow2 top.ref
    guest src/mid.qcow2 mid.ref
    "$VDK_IMG" convert -O raw src/top.qcow2 v.raw
    same_file v.raw top.ref

    # info --backing-chain, human and JSON, equal to qemu-img's.
    # (vdk's VHD driver adds format-specific information QEMU's vpc driver
    # does not have; that block is left out of the comparison.)
    (cd src && "$VDK_IMG" info --backing-chain top.qcow2) | no_vpc_specific >v.txt
    (cd src && qemu-img info --backing-chain top.qcow2) | no_vpc_specific >q.txt
    diff -u q.txt v.txt >&2 || fail "info --backing-chain over $bfmt differs"
    (cd src && "$VDK_IMG" info --backing-chain --output=json top.qcow2) | no_vpc_specific_json >v.txt
    (cd src && qemu-img info --backing-chain --output=json top.qcow2) | no_vpc_specific_json >q.txt
    diff -u q.txt v.txt >&2 || fail "info --backing-chain --output=json over $bfmt differs"

    # commit: top into mid; top emptied, chain reads the same.
    copies
    (cd q && qemu-img commit -q top.qcow2)
    (cd v && "$VDK_IMG" commit -q top.qcow2) || fail "commit over $bfmt"
    clean v/top.qcow2 "commit"
    clean v/mid.qcow2 "commit"
    qemu-img compare -q v/mid.qcow2 q/mid.qcow2 || fail "commit: mid differs from qemu-img's"
    qemu-img compare -q v/top.qcow2 q/top.qcow2 || fail "commit: top differs from qemu-img's"
    guest v/top.qcow2 v.raw && same_file v.raw top.ref
    [ "$(qemu-img map --output=json v/top.qcow2 | grep -c '"depth": 0')" = 0 ] ||
        fail "commit left data in top"

    # commit -d: top keeps its data.
    copies
    (cd q && qemu-img commit -q -d top.qcow2)
    (cd v && "$VDK_IMG" commit -q -d top.qcow2) || fail "commit -d over $bfmt"
    cmp -s v/top.qcow2 src/top.qcow2 || fail "commit -d changed top"
    qemu-img compare -q v/mid.qcow2 q/mid.qcow2 || fail "commit -d: mid differs"
    clean v/mid.qcow2 "commit -d"

    # commit -b BASE -p: top and mid into the bottom image.
    copies
    (cd q && qemu-img commit -q -b base.img top.qcow2)
    (cd v && "$VDK_IMG" commit -p -b base.img top.qcow2 >/dev/null) || fail "commit -b over $bfmt"
    qemu-img compare -q -f "$bfmt" -F "$bfmt" v/base.img q/base.img ||
        fail "commit -b: base differs from qemu-img's"
    qemu-img compare -q v/top.qcow2 q/top.qcow2 || fail "commit -b: top differs"
    clean v/top.qcow2 "commit -b"
    [ "$bfmt" != qcow2 ] || clean v/base.img "commit -b"

    # rebase (safe) onto a new backing file, and onto none.
    qemu-img create -q -f raw src/new.raw 6M
    qio -f raw -c 'write -P 9 512k 3M' src/new.raw
    copies
    (cd q && qemu-img rebase -b new.raw -F raw top.qcow2)
    (cd v && "$VDK_IMG" rebase -b new.raw -F raw top.qcow2) || fail "rebase over $bfmt"
    clean v/top.qcow2 "rebase"
    qemu-img compare -q v/top.qcow2 q/top.qcow2 || fail "rebase differs from qemu-img's"
    guest v/top.qcow2 v.raw && same_file v.raw top.ref
    qemu-img info v/top.qcow2 | grep -q '^backing file: new.raw' || fail "rebase: reference"
    copies
    (cd q && qemu-img rebase -b '' top.qcow2)
    (cd v && "$VDK_IMG" rebase -b '' top.qcow2) || fail "rebase -b ''"
    clean v/top.qcow2 "rebase -b ''"
    qemu-img compare -q v/top.qcow2 q/top.qcow2 || fail "rebase -b '' differs"
    qemu-img info v/top.qcow2 | grep -q '^backing file' && fail "rebase -b '' kept a backing file"

    # rebase -u: header only, byte-identical to qemu-img's result.
    copies
    (cd q && qemu-img rebase -u -b new.raw -F raw top.qcow2)
    (cd v && "$VDK_IMG" rebase -u -b new.raw -F raw top.qcow2) || fail "rebase -u"
    cmp -s v/top.qcow2 q/top.qcow2 || fail "rebase -u differs from qemu-img's"
    echo "ok: chain over $bfmt" >&2
done

# commit into a smaller base grows it; convert -B writes only what the
# new backing file does not already give, as qemu-img.
rm -rf g && mkdir g && cd g
qemu-img create -q -f qcow2 base.qcow2 4M
qio -c 'write -P 1 0 4M' base.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 8M
qio -c 'write -P 2 1M 64k' -c 'write -P 3 6M 64k' top.qcow2
guest top.qcow2 top.ref
cp base.qcow2 qbase.qcow2 && cp top.qcow2 qtop.qcow2
qemu-img rebase -u -b qbase.qcow2 -F qcow2 qtop.qcow2
qemu-img commit -q qtop.qcow2
"$VDK_IMG" commit -q top.qcow2 || fail "commit into a smaller base"
clean base.qcow2 "commit into a smaller base"
qemu-img compare -q base.qcow2 qbase.qcow2 || fail "grown base differs from qemu-img's"
guest top.qcow2 v.raw && same_file v.raw top.ref
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 t3.qcow2 8M
qio -c 'write -P 5 0 64k' -c 'write -P 1 64k 64k' t3.qcow2
"$VDK_IMG" convert -O qcow2 -B base.qcow2 -F qcow2 t3.qcow2 v.qcow2 || fail "convert -B"
qemu-img convert -O qcow2 -B base.qcow2 -F qcow2 t3.qcow2 q.qcow2
clean v.qcow2 "convert -B"
qemu-img compare -q v.qcow2 q.qcow2 || fail "convert -B: guest data differs"
qemu-img map --output=json v.qcow2 | sed 's/, "offset": [0-9]*//' >v.map
qemu-img map --output=json q.qcow2 | sed 's/, "offset": [0-9]*//' >q.map
diff -u q.map v.map >&2 || fail "convert -B: allocation differs from qemu-img's"
cd "$T"

# Errors.
make_chain qcow2
expect_fail "missing.qcow2.*No such file" "$VDK_IMG" create -f qcow2 -b missing.qcow2 -F qcow2 x.qcow2
qemu-img create -q -f qcow2 -u -b missing.qcow2 -F qcow2 x.qcow2 1M
expect_fail "opening backing file 'missing.qcow2'.*No such file" "$VDK_IMG" convert -O raw x.qcow2 x.raw
expect_fail "opening backing file" "$VDK_IMG" commit x.qcow2
expect_fail "VHD|vpc" "$VDK_IMG" create -f qcow2 -b src/mid.qcow2 -F vpc y.qcow2
expect_fail "VHD|vpc" "$VDK_IMG" rebase -b mid.qcow2 -F vpc src/top.qcow2
expect_fail "unknown|format" "$VDK_IMG" create -f qcow2 -b src/mid.qcow2 -F nosuchfmt y.qcow2
clean src/top.qcow2 "failed rebase"
qemu-img create -q -f qcow2 -u -b l2.qcow2 -F qcow2 l1.qcow2 1M
qemu-img create -q -f qcow2 -u -b l1.qcow2 -F qcow2 l2.qcow2 1M
expect_fail "loop" "$VDK_IMG" info --backing-chain l1.qcow2
expect_fail "loop" "$VDK_IMG" convert -O raw l1.qcow2 x.raw
expect_fail "loop" "$VDK_IMG" commit l1.qcow2
qemu-img create -q -f qcow2 self.qcow2 1M
qemu-img rebase -u -b self.qcow2 -F qcow2 self.qcow2
expect_fail "loop" "$VDK_IMG" convert -O raw self.qcow2 x.raw

# Commit into a base another process holds: a clean error, nothing written.
copies
cp v/mid.qcow2 mid.orig
qemu-io -r -c 'sleep 600000' v/mid.qcow2 &
holder=$!
# Wait until the holder's locks show up, without taking a lock ourselves
# (a probing writer could win the race and keep the holder out).
ino=$(stat -c %i v/mid.qcow2)
for _ in $(seq 200); do
    grep -q ":$ino " /proc/locks && break
    sleep 0.05
done
grep -q ":$ino " /proc/locks || fail "the lock holder did not start"
rc=0
(cd v && "$VDK_IMG" commit top.qcow2) 2>err.txt || rc=$?
kill "$holder"; wait "$holder" 2>/dev/null || true
[ "$rc" = 1 ] || { cat err.txt >&2; fail "commit into a locked base: exit $rc"; }
grep -q "cannot commit into 'mid.qcow2'.*lock" err.txt || { cat err.txt >&2; fail "commit lock message"; }
cmp -s v/mid.qcow2 mid.orig || fail "commit into a locked base wrote it"
cmp -s v/top.qcow2 src/top.qcow2 || fail "commit into a locked base changed top"
# A read-only file (only meaningful when not root).
if [ "$(id -u)" != 0 ]; then
    chmod 0444 v/mid.qcow2
    expect_fail "cannot commit into|read-only|Permission denied" sh -c "cd v && '$VDK_IMG' commit top.qcow2"
    chmod 0644 v/mid.qcow2
fi
echo "backing chains: all OK"
