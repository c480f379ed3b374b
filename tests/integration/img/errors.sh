#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input to vdk-img: every case fails with a short message, a non-zero
# exit code and no crash; where qemu-img's wording is ours, it is compared.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/img/cmp.sh"
cd "$T"
V=$VDK_IMG
qimg create -q -f raw a.raw 4M

# Missing files.
for cmd in info map check snapshot; do
    expect_fail "Could not open 'nonexist'.*No such file" "$V" $cmd nonexist
done
expect_fail "Could not open 'nonexist'" "$V" resize -f raw nonexist 1M
expect_fail "Could not open 'nonexist'" "$V" measure nonexist
expect_fail "Could not open 'nonexist'" "$V" amend -f raw -o size=1M nonexist
expect_fail "[Cc]ould not create '/nonexist/x.raw'" "$V" create -q -f raw /nonexist/x.raw 1M

# Sizes.
same_error "create -1" create -f raw x.raw -1
same_error "create 1Q" create -f raw x.raw 1Q
same_error "create 99999999T" create -f raw x.raw 99999999T
same_error "create -o size=1Q" create -f raw -o size=1Q x.raw
same_error "create -o size=99999999T" create -f raw -o size=99999999T x.raw
same_error "create size twice" create -f raw -o size=1M x.raw 1M
same_error "create no size" create -f raw x.raw
same_error "resize 1Q" resize -f raw a.raw 1Q
same_error "resize +99999999T" resize -f raw a.raw +99999999T
same_error "resize -5M" resize -f raw a.raw -5M
same_error "resize shrink" resize -f raw a.raw 1M
same_error "map bad offset" map --start-offset=1Q a.raw
expect_fail "Invalid image size" "$V" create -f raw x.raw ''
[ ! -e x.raw ] || fail "a failed create left x.raw behind"

# Options.
same_error "unknown -o key" create -f raw -o foo=bar x.raw 1M
same_error "unknown -o flag" create -f raw -o bogus x.raw 1M
expect_fail "preallocation.*bad" "$V" create -q -f raw -o preallocation=bad x.raw 1M
expect_fail "nocow" "$V" create -q -f raw -o nocow=maybe x.raw 1M
same_error "unknown format" create -f nosuchfmt x.raw 1M
same_error "backing with raw" create -f raw -b a.raw -F raw x.raw 1M
same_error "unknown short option" info -x a.raw
same_error "unknown long option" info --bogus a.raw
same_error "missing argument" info a.raw -f
same_error "missing --output value" info --output
same_error "bad --output" info --output=xml a.raw
same_error "two file names" info a.raw a.raw
same_error "no file name" info
same_error "create without file" create -f raw
same_error "extra create argument" create -f raw x.raw 1M 2M
same_error "unknown command" frobnicate a.raw
same_error "no command" ''
same_error "resize missing size" resize a.raw
same_error "resize bad prealloc" resize -f raw --preallocation=bogus a.raw 5M
same_error "--image-opts with -f" info --image-opts -f raw driver=raw,file.filename=a.raw
same_error "check -r bogus" check -r bogus a.raw
same_error "measure both" measure --size 1M a.raw
expect_fail "Invalid cache option" "$V" info -t bogus a.raw
expect_fail "Unknown file format|unknown image format" "$V" info -f nosuchfmt a.raw
expect_fail "is not|Could not open" "$V" info /

# Formats without the feature.
same_error "check raw" check -f raw a.raw
same_error "check raw json" check -f raw --output=json a.raw
same_error "amend raw" amend -f raw -o size=1M a.raw
same_error "amend without -o" amend -f raw a.raw
same_error "snapshot mix" snapshot -l -c x a.raw
expect_fail "Could not create snapshot 's'" "$V" snapshot -c s a.raw
expect_fail "Could not apply snapshot 's'" "$V" snapshot -a s a.raw
expect_fail "Could not delete snapshot 's'" "$V" snapshot -d s a.raw
same_output "snapshot -l raw" snapshot -l a.raw

# An image in use by qemu-nbd (which holds write and denies resize):
# writers fail cleanly and change nothing; info and -U readers work.
qemu-nbd -f raw -k "$T/nbd.sock" a.raw &
holder=$!
trap 'kill $holder 2>/dev/null || true; rm -rf "$T"' EXIT
for _ in $(seq 200); do
    [ -S "$T/nbd.sock" ] && break
    sleep 0.05
done
[ -S "$T/nbd.sock" ] || fail "qemu-nbd did not start"
expect_fail "in use|lock" "$V" create -q -f raw a.raw 1M
expect_fail "in use|lock" "$V" resize -f raw a.raw 8M
! qimg create -q -f raw a.raw 1M 2>/dev/null || fail "qemu-img could create over it"
# info reads metadata only, so like qemu-img info it works without -U.
same_output "info of an image in use" info --output=json a.raw
"$V" info -U a.raw >/dev/null || fail "info -U on an image in use"
"$V" map -U -f raw a.raw >/dev/null || fail "map -U on an image in use"
kill "$holder"
wait "$holder" || true
[ "$(size_of a.raw)" = 4194304 ] || fail "the image in use was changed"
echo ok
