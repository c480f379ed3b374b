#!/bin/bash
# SPDX-License-Identifier: MIT
# rebase -c (qemu-img 8.2's option; the 7.2 peer here has no -c): the
# clusters a safe rebase copies into the image are stored compressed.
# The result reads exactly as qemu-img rebase's (without -c) on a twin
# chain, qemu-img check is clean and counts compressed clusters, and what
# the image allocated itself stays as it was.
. "$VDK_SRC/tests/integration/lib.sh"

# base <- mid <- top; the rebase drops mid, so what mid held (and where
# base and the new backing differ) is copied into top.
make_chain() { # DIR CLUSTER_SIZE
    local d=$1 cs=$2
    mkdir -p "$d"
    qimg create -q -f qcow2 -o cluster_size="$cs" "$d/base.qcow2" 8200k
    qemu-io -f qcow2 -c 'write -P 0x11 0 4M' "$d/base.qcow2" >/dev/null
    qimg create -q -f qcow2 -o cluster_size="$cs" -b "$d/base.qcow2" -F qcow2 "$d/mid.qcow2"
    # Text-like data compresses; the last write reaches the short last
    # cluster of the 8200k image.
    qemu-io -f qcow2 -c 'write -P 0x22 1M 2M' -c 'write -P 0x23 5M 64k' \
        -c 'write -P 0x24 8136k 64k' "$d/mid.qcow2" >/dev/null
    qimg create -q -f qcow2 -o cluster_size="$cs" -b "$d/mid.qcow2" -F qcow2 "$d/top.qcow2"
    qemu-io -f qcow2 -c 'write -P 0x33 1536k 128k' "$d/top.qcow2" >/dev/null
    qimg create -q -f qcow2 -o cluster_size="$cs" "$d/new.qcow2" 8200k
    qemu-io -f qcow2 -c 'write -P 0x11 0 2M' -c 'write -P 0x55 6M 1M' "$d/new.qcow2" >/dev/null
}

compressed() { # the count qemu-img check gives (absent when 0)
    local n
    n=$(qimg check --output=json "$1" | sed -n 's/.*"compressed-clusters": \([0-9]*\).*/\1/p')
    echo "${n:-0}"
}

for cs in 64k 4k 512k; do
    make_chain "$T/v$cs" "$cs"
    make_chain "$T/q$cs" "$cs"
    for target in base new; do
        cp "$T/v$cs/top.qcow2" "$T/v$cs/t-$target.qcow2"
        cp "$T/q$cs/top.qcow2" "$T/q$cs/t-$target.qcow2"
        "$VDK_IMG" rebase -c -b "$target.qcow2" -F qcow2 "$T/v$cs/t-$target.qcow2" ||
            fail "rebase -c onto $target ($cs)"
        qimg rebase -b "$target.qcow2" -F qcow2 "$T/q$cs/t-$target.qcow2"
        qimg compare -q "$T/q$cs/t-$target.qcow2" "$T/v$cs/t-$target.qcow2" ||
            fail "rebase -c onto $target ($cs) reads differently from qemu-img rebase"
        qimg check -q "$T/v$cs/t-$target.qcow2" || fail "check after rebase -c ($cs, $target)"
        n=$(compressed "$T/v$cs/t-$target.qcow2")
        [ "$n" -gt 0 ] || fail "rebase -c onto $target ($cs): no compressed clusters"
        # The image's own write (0x33) stays an ordinary cluster.
        qimg map --output=json "$T/v$cs/t-$target.qcow2" |
            grep -q '"start": 1572864, "length": [0-9]*, "depth": 0, .*"offset"' ||
            fail "rebase -c ($cs): the image's own data moved"
    done
    # Without -c nothing is compressed.
    cp "$T/v$cs/top.qcow2" "$T/v$cs/plain.qcow2"
    "$VDK_IMG" rebase -b base.qcow2 -F qcow2 "$T/v$cs/plain.qcow2" || fail "rebase ($cs)"
    [ "$(compressed "$T/v$cs/plain.qcow2")" = 0 ] || fail "rebase without -c compressed ($cs)"
done

# --compress is the long form; -u -c changes only the reference.
make_chain "$T/l" 64k
"$VDK_IMG" rebase --compress -b base.qcow2 -F qcow2 "$T/l/top.qcow2" || fail "rebase --compress"
[ "$(compressed "$T/l/top.qcow2")" -gt 0 ] || fail "--compress"
"$VDK_IMG" rebase -u -c -b new.qcow2 -F qcow2 "$T/l/top.qcow2" || fail "rebase -u -c"
qimg info "$T/l/top.qcow2" | grep -q "^backing file: new.qcow2" || fail "rebase -u -c reference"

# Images that cannot store compressed clusters: qemu-img's message.
qimg create -q -f raw "$T/r.raw" 1M
expect_fail "^vdk-img: Compression not supported for this file format$" \
    "$VDK_IMG" rebase -c -f raw -b "" "$T/r.raw"
retry_setup --if "$LOAD_FLAKES" qimg create -q -f qcow2 --object secret,id=s0,data=pw -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 \
    -b "$T/l/base.qcow2" -F qcow2 "$T/e.qcow2" 8200k
expect_fail "Compression not supported for this file format" \
    "$VDK_IMG" rebase -c --object secret,id=s0,data=pw --image-opts \
    "driver=qcow2,file.filename=$T/e.qcow2,encrypt.key-secret=s0" -b "" 2>/dev/null
"$VDK_IMG" rebase --help | grep -q -- '-c, --compress' || fail "rebase --help lacks -c"
echo "rebase -c: ok"
