#!/bin/bash
# SPDX-License-Identifier: MIT
# A failed create or convert removes the file it made and leaves a file it
# did not make as it was (qemu-img truncates or deletes an existing file
# when create fails on an option; vdk checks the options first).
. "$VDK_SRC/tests/integration/lib.sh"
cd "$T"
echo -n pw >pw
qemu-img create -q -f qcow2 base.qcow2 1M
qemu-img create -q -f vpc base.vhd 1M

# create_fails RE ARGS... (the image is "x"): no file afterwards, and an
# existing file keeps its bytes.
create_fails() {
    local re=$1; shift
    rm -f x
    expect_fail "$re" "$VDK_IMG" create "$@"
    [ ! -e x ] || fail "create $* left x behind"
    echo 'precious bytes' >x
    cp x before
    expect_fail "$re" "$VDK_IMG" create "$@"
    cmp -s x before || fail "create $* changed an existing file"
}
create_fails 'Cluster size must be a power of two' -f qcow2 -o cluster_size=3k x 1M
create_fails 'Refcount width must be a power of two' -f qcow2 -o refcount_bits=3 x 1M
create_fails 'compatibility level 1.1' -f qcow2 -o compat=0.10,lazy_refcounts=on x 1M
create_fails 'extended L2' -f qcow2 -o extended_l2=on,cluster_size=4k x 1M
create_fails 'backing file and preallocation' -f qcow2 -o preallocation=metadata \
    -b base.qcow2 -F qcow2 x 1M
create_fails 'too large' -f vpc x 3000G
create_fails 'fixed cannot have a backing file' -f vpc -o subformat=fixed \
    -b base.vhd -F vpc x
create_fails 'no LUKS passphrase' -f luks x 1M </dev/null
create_fails "no secret with id 'nope'" -f luks -o key-secret=nope x 1M
create_fails 'iter-time' -f luks --object secret,id=s0,file=pw -o key-secret=s0,iter-time=0 x 1M
create_fails "expects one of off, falloc, full" -f raw -o preallocation=metadata x 1M
create_fails "encrypt.key-secret|passphrase" -f qcow2 -o encrypt.format=luks x 1M </dev/null
# The data file of a qcow2 that fails goes too.
rm -f x data.bin
expect_fail 'Cluster size' "$VDK_IMG" create -f qcow2 -o data_file=data.bin,cluster_size=3k x 1M
[ ! -e data.bin ] && [ ! -e x ] || fail "qcow2 with a data file left files behind"

# Failing after the file was made (preallocation beyond the file system):
# the new file is removed.
rm -f x
expect_fail 'preallocate|too large|space' "$VDK_IMG" create -f raw -o preallocation=falloc x 100T
[ ! -e x ] || fail "create with failed preallocation left x behind"

# convert: a target it created is removed when the copy fails; an
# existing target (-n or not) is not deleted.
qemu-img create -q -f qcow2 bad.qcow2 4M
qemu-io -c 'write -P 1 2M 64k' bad.qcow2 >/dev/null
l1=$(od -An -tu8 --endian=big -j40 -N8 bad.qcow2 | tr -d ' ')
printf '\x80\0\0\0\0\x01\x23\0' | dd of=bad.qcow2 bs=1 seek="$l1" conv=notrunc status=none
for fmt in raw qcow2 vpc; do
    rm -f out
    expect_fail 'error while reading' "$VDK_IMG" convert -O $fmt bad.qcow2 out
    [ ! -e out ] || fail "failed convert -O $fmt left its target behind"
done
echo 'precious bytes' >out
expect_fail 'error while reading' "$VDK_IMG" convert -O raw bad.qcow2 out
[ -e out ] || fail "failed convert deleted a target it did not create"
expect_fail 'Cluster size' "$VDK_IMG" convert -O qcow2 -o cluster_size=3k bad.qcow2 new
[ ! -e new ] || fail "convert with a bad option left its target behind"
echo 'precious bytes' >keep
cp keep before
expect_fail 'Cluster size' "$VDK_IMG" convert -O qcow2 -o cluster_size=3k bad.qcow2 keep
cmp -s keep before || fail "convert with a bad option changed an existing target"
echo ok
