#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input to vdk-img convert: clear one-line errors, non-zero exit, no
# crash, and no write to an image another process holds.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/convert/common.sh"
cd "$T"

mkimg a.raw 1048576 0:4096:r
mkimg small.raw 524288
V=$VDK_IMG
expect_fail 'Must specify image file name' "$V" convert
expect_fail 'Must specify image file name' "$V" convert a.raw
expect_fail "Could not open 'nope.raw'.*No such file" "$V" convert nope.raw out.raw
expect_fail "Could not open 'nope.raw'.*No such file" "$V" convert -n a.raw nope.raw
expect_fail "invalid option 'foo'" "$V" convert -O raw -o foo=bar a.raw o.raw
expect_fail 'Invalid buffer size for sparse output' "$V" convert -S -1 a.raw o.raw
expect_fail 'Invalid buffer size for sparse output' "$V" convert -S 1Q a.raw o.raw
expect_fail 'multiples of 512 up to 16777216' "$V" convert -S 3 a.raw o.raw
expect_fail 'multiples of 512 up to 16777216' "$V" convert -S 32M a.raw o.raw
expect_fail 'between 1 and 16' "$V" convert -m 0 a.raw o.raw
expect_fail 'between 1 and 16' "$V" convert -m 17 a.raw o.raw
expect_fail 'between 1 and 16' "$V" convert -m -1 a.raw o.raw
expect_fail 'Compression not supported for this file format' "$V" convert -c -O raw a.raw c.raw
[ ! -e c.raw ] || fail "-c into raw created the target"
expect_fail "Unknown file format 'foo'" "$V" convert -O foo a.raw o.raw
expect_fail "unknown image format 'foo'" "$V" convert -f foo a.raw o.raw
expect_fail 'Invalid cache option: bogus' "$V" convert -t bogus a.raw o.raw
expect_fail 'Invalid source cache option: bogus' "$V" convert -T bogus a.raw o.raw
expect_fail "Backing file not supported for file format 'raw'" "$V" convert -B x a.raw o.raw
expect_fail "Backing file format not supported for file format 'raw'" "$V" convert -F raw a.raw o.raw
expect_fail '-o has no effect when skipping image creation' "$V" convert -n -o preallocation=full a.raw a.raw
expect_fail 'Failed to load snapshot' "$V" convert -l snap a.raw o.raw
expect_fail 'requires use of -n' "$V" convert --target-is-zero a.raw o.raw
expect_fail 'requires use of -n' "$V" convert --target-image-opts a.raw driver=raw,file.filename=o.raw
expect_fail 'output file is smaller than input file' "$V" convert -n a.raw small.raw
expect_fail "unrecognized option '-x'" "$V" convert -x a.raw o.raw
expect_fail "missing argument for option '-O'" "$V" convert -O
expect_fail 'Cannot enable copy offloading when -c is used' "$V" convert -C -c a.raw o.raw
expect_fail 'Failed to get .*"write" lock' "$V" convert a.raw a.raw

# A target held by qemu-nbd (writable export) is refused, and not touched.
mkimg held.raw 2097152 0:2097152:r
cp held.raw held.orig
# Starting qemu-nbd is set-up, retried: twice in a few hundred suite runs
# it said 'Failed to get "write" lock' on this fresh file and exited.
nbd_pid=
trap 'if [ -n "$nbd_pid" ]; then kill $nbd_pid 2>/dev/null || true; wait $nbd_pid 2>/dev/null || true; fi; rm -rf "$T"' EXIT
for attempt in 1 2 3; do
    qemu-nbd -f raw -k "$T/nbd.sock" held.raw &
    nbd_pid=$!
    for _ in $(seq 100); do
        [ -S "$T/nbd.sock" ] && break
        kill -0 $nbd_pid 2>/dev/null || break
        sleep 0.1
    done
    [ -S "$T/nbd.sock" ] && break
    wait $nbd_pid 2>/dev/null || true
    nbd_pid=
    echo "qemu-nbd did not start (attempt $attempt), retrying" >&2
    sleep 1
done
[ -S "$T/nbd.sock" ] || fail "qemu-nbd did not start"
expect_fail 'Failed to get .*"write" lock' "$V" convert a.raw held.raw
expect_fail 'Failed to get .*"write" lock' "$V" convert -n a.raw held.raw
expect_fail 'Failed to get .*"write" lock' "$V" dd if=a.raw of=held.raw
expect_fail 'Failed to get .*"write" lock' "$V" convert held.raw o.raw
"$V" convert -U held.raw o-shared.raw || fail "-U should read a held image"
kill $nbd_pid; wait $nbd_pid 2>/dev/null || true
same_file held.raw held.orig
echo "convert-errors: ok"
