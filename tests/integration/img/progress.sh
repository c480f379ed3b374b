#!/bin/bash
# SPDX-License-Identifier: MIT
# -p into a pipe: every command with progress (convert, compare, commit,
# rebase, rebase -u, amend) prints qemu-img's "    (N.NN/100%)\r" lines
# and a final "\n", as qemu-img does, followed by the same messages.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"

qimg create -q -f raw src.raw 32M
qemu-io -f raw -c 'write -P 1 0 8M' -c 'write -P 2 20M 4M' src.raw >/dev/null
# chain: base <- top, made the same way for each tool
chain() { # DIR
    mkdir -p "$1"
    qimg convert -O qcow2 src.raw "$1/base.qcow2"
    qimg create -q -f qcow2 -b base.qcow2 -F qcow2 "$1/top.qcow2"
    qemu-io -c 'write -P 3 4M 8M' "$1/top.qcow2" >/dev/null
}
# both DESC DIR-ARGS...: run the command with vdk-img in v/ and qemu-img in
# q/; both outputs are progress lines followed by the same text.
both() {
    local desc=$1; shift
    (cd v && "$VDK_IMG" "$@" >../v.out) || fail "$desc: vdk-img $* failed"
    (cd q && qimg "$@" >../q.out) || fail "$desc: qemu-img $* failed"
    qemu_progress q.out >q.rest
    qemu_progress v.out >v.rest
    cmp -s v.rest q.rest || { diff q.rest v.rest; fail "$desc: output after progress"; }
}
rm -rf v q; chain v; chain q
both "convert" convert -p -O qcow2 ../src.raw c.qcow2
both "convert -c" convert -p -c -O qcow2 ../src.raw cc.qcow2
both "compare (identical)" compare -p ../src.raw c.qcow2
# compare of different images: exit 1 for both, same message after progress
cp src.raw diff.raw
qemu-io -f raw -c 'write -P 9 30M 4k' diff.raw >/dev/null
rc=0; "$VDK_IMG" compare -p diff.raw v/c.qcow2 >v.out || rc=$?
[ "$rc" = 1 ] || fail "compare of different images exited $rc"
rc=0; qimg compare -p diff.raw q/c.qcow2 >q.out || rc=$?
[ "$rc" = 1 ] || fail "qemu-img compare exited $rc"
[ "$(qemu_progress v.out)" = "$(qemu_progress q.out)" ] || fail "compare mismatch message"
both "commit" commit -p top.qcow2
both "amend" amend -p -o compat=0.10 base.qcow2
rm -rf v q; chain v; chain q
both "rebase" rebase -p -b '' top.qcow2
both "rebase -u" rebase -p -u -b base.qcow2 -F qcow2 top.qcow2
# -q wins over -p, as in qemu-img
"$VDK_IMG" convert -q -p -O raw src.raw quiet.raw >v.out
[ ! -s v.out ] || fail "convert -q -p printed"
echo ok
