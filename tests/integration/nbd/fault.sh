#!/bin/bash
# SPDX-License-Identifier: MIT
# The fault filter behind vdk-nbd, seen by real clients: nbdsh and qemu-io
# get exactly the configured errno for requests that overlap the range by
# one byte and none for requests one byte outside it, a failed write
# writes nothing, flush/trim/zero faults, a seeded rate gives the same
# outcomes on every run, delay slows the matching requests by at least the
# asked amount, and a control file edit reaches a connection that is
# already open.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
qimg create -q -f qcow2 "$T/d.qcow2" 4M
qemu-io -f qcow2 -c 'write -P 0x11 0 4M' "$T/d.qcow2" >/dev/null
BELOW="file.driver=qcow2,file.file.filename=$T/d.qcow2"

# Exact ranges and each errno: offset=1M, length=64K+1 (an odd length, so
# the last byte is not on any alignment).
for e in EIO ENOSPC EPERM ENOMEM; do
    start_nbd "$S" -t --image-opts "driver=fault,ops=read|write,errno=$e,offset=1M,length=65537,$BELOW"
    $PY - "$(uri "$S")" "$e" <<'PYEOF' || fail "nbdsh ranges ($e)"
import sys, nbd
uri, want = sys.argv[1], sys.argv[2]
h = nbd.NBD()
h.connect_uri(uri)
lo, hi = 1 << 20, (1 << 20) + 65537   # [lo, hi) fails

def outcome(fn):
    try:
        fn()
        return "ok"
    except nbd.Error as e:
        return e.errno

cases = [
    (lo - 1, 1, "ok"), (lo, 1, want), (hi - 1, 1, want), (hi, 1, "ok"),
    (0, lo, "ok"), (0, lo + 1, want), (hi, 4096, "ok"), (hi - 1, 4096, want),
    (lo - 512, 1024, want), (0, 4 << 20, want),
]
for off, ln, exp in cases:
    got = outcome(lambda: h.pread(ln, off))
    if got != exp:
        sys.exit("read %d+%d: %s, wanted %s" % (off, ln, got, exp))
    got = outcome(lambda: h.pwrite(b"\x22" * ln, off))
    if got != exp:
        sys.exit("write %d+%d: %s, wanted %s" % (off, ln, got, exp))
# The failed writes wrote nothing, not even outside the range; the
# successful ones did.
assert h.pread(1, lo - 1) == b"\x22"
assert h.pread(512, lo - 1024) == b"\x22" * 512
h.pwrite(b"\x11" * 4096, lo - 4096)
assert h.pread(4096, hi) == b"\x22" * 4096
h.shutdown()
PYEOF
    # qemu-io: the same, as its users see it.
    msg=$($PY -c "import os,errno; print(os.strerror(errno.$e))")
    out=$(qemu-io -f raw "$(uri "$S")" -c "read $((1048576 + 65536)) 1" -c 'read 1048575 1' \
          -c "read $((1048576 + 65537)) 1" 2>&1 || true)
    [ "$(grep -c "read failed: $msg" <<<"$out")" -eq 1 ] || fail "qemu-io ($e): $out"
    [ "$(grep -c 'read 1/1 bytes' <<<"$out")" -eq 2 ] || fail "qemu-io ($e): $out"
    stop_nbd
done

# Flush, trim and zero faults (nbdsh).  Trims reach the image only with
# --discard=unmap (as in qemu-nbd).
start_nbd "$S" -t --discard=unmap --image-opts "driver=fault,ops=trim|zero,errno=EPERM,offset=2M,length=4k,$BELOW"
$PY - "$(uri "$S")" <<'PYEOF' || fail "nbdsh flush/trim/zero"
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
def err(fn):
    try:
        fn()
        return "ok"
    except nbd.Error as e:
        return e.errno
assert err(h.flush) == "ok"
assert err(lambda: h.trim(4096, 2 << 20)) == "EPERM"
assert err(lambda: h.zero(4096, (2 << 20) - 4096)) == "ok"
assert err(lambda: h.zero(4097, (2 << 20) - 4096)) == "EPERM"
assert err(lambda: h.pread(4096, 2 << 20)) == "ok"
h.shutdown()
PYEOF
stop_nbd
# A flush fault (once: the flush at exit must succeed, or vdk-nbd rightly
# reports the image unflushed).
start_nbd "$S" -t --image-opts "driver=fault,ops=flush,errno=ENOSPC,once=on,$BELOW"
$PY - "$(uri "$S")" <<'PYEOF' || fail "nbdsh flush"
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pread(512, 0)
h.pwrite(b"x" * 512, 0)
try:
    h.flush()
    sys.exit("flush did not fail")
except nbd.Error as e:
    assert e.errno == "ENOSPC", e
h.flush()
h.shutdown()
PYEOF
stop_nbd

# A seeded rate: the same outcomes on every run.
run_rate() {
    start_nbd "$S" -t --image-opts "driver=fault,ops=read,rate=0.3,seed=$1,$BELOW"
    $PY - "$(uri "$S")" <<'PYEOF' || fail "nbdsh rate"
import sys, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
s = ""
for i in range(300):
    try:
        h.pread(512, (i * 4096) % (4 << 20))
        s += "."
    except nbd.Error as e:
        assert e.errno == "EIO", e
        s += "x"
print(s)
h.shutdown()
PYEOF
    stop_nbd
}
a=$(run_rate 7); b=$(run_rate 7); c=$(run_rate 8)
[ "$a" = "$b" ] || fail "seeded rate differs between runs: $a / $b"
[ "$a" != "$c" ] || fail "another seed gave the same outcomes"
n=$(tr -cd x <<<"$a" | wc -c)
[ "$n" -gt 45 ] && [ "$n" -lt 135 ] || fail "rate=0.3 failed $n of 300 (seed 7)"
echo "rate=0.3 seed=7: $n of 300 reads failed, same on a second run"

# delay: measuring the feature, not speed.  Each delayed read must take at
# least the delay (a sleep cannot be shorter); the excess over it is
# printed, and only a generous bound is checked (shared, loaded hosts).
start_nbd "$S" -t --image-opts "driver=fault,ops=read,delay=40ms,offset=1M,length=1M,$BELOW"
$PY - "$(uri "$S")" <<'PYEOF' || fail "delay"
import sys, time, nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
def t(off):
    t0 = time.monotonic()
    h.pread(4096, off)
    return time.monotonic() - t0
slow = [t((1 << 20) + i * 4096) for i in range(10)]
fast = [t(3 << 20) for i in range(10)]
assert min(slow) >= 0.040, "a delayed read took %.1f ms" % (min(slow) * 1e3)
extra = sum(slow) / 10 - sum(fast) / 10
print("delay=40ms: delayed reads %.1f ms on average, undelayed %.2f ms, extra %.1f ms"
      % (sum(slow) / 10 * 1e3, sum(fast) / 10 * 1e3, extra * 1e3))
assert extra < 0.040 + 2.0, "delay far beyond 40 ms: %.1f ms" % (extra * 1e3)
h.shutdown()
PYEOF
stop_nbd

# control=PATH: an edit reaches a connection already open.
: >"$T/ctl"
start_nbd "$S" -t --image-opts "driver=fault,control=$T/ctl,$BELOW"
$PY - "$(uri "$S")" "$T/ctl" <<'PYEOF' || fail "control file"
import os, sys, time, nbd
uri, ctl = sys.argv[1:]
h = nbd.NBD()
h.connect_uri(uri)
def set_ctl(text):
    with open(ctl + ".new", "w") as f:
        f.write(text)
    os.rename(ctl + ".new", ctl)
def until(off, want):
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:     # a bound against hanging only
        try:
            h.pread(512, off)
            got = "ok"
        except nbd.Error as e:
            got = e.errno
        if got == want:
            return time.monotonic() - t0
        time.sleep(0.01)
    sys.exit("read at %d never gave %s" % (off, want))
h.pread(512, 0)
set_ctl("ops=read,offset=0,length=512,errno=ENOSPC\nops=write,offset=1M,length=1\n")
d1 = until(0, "ENOSPC")
try:
    h.pwrite(b"x", 1 << 20)
    sys.exit("second control line not in force")
except nbd.Error as e:
    assert e.errno == "EIO", e
set_ctl("")
d2 = until(0, "ok")
h.pwrite(b"x", 1 << 20)
print("control file: faults on after %.0f ms, off after %.0f ms" % (d1 * 1e3, d2 * 1e3))
h.shutdown()
PYEOF
stop_nbd

# Bad values are refused at start-up, naming the key and the value.
expect_fail 'errno=EFOO' "$VDK_NBD" -k "$S" --image-opts "driver=fault,errno=EFOO,$BELOW"
expect_fail 'rate=2' "$VDK_NBD" -k "$S" --image-opts "driver=fault,rate=2,$BELOW"
expect_fail "unknown key 'speed'" "$VDK_NBD" -k "$S" --image-opts "driver=fault,speed=9,$BELOW"
echo "nbd fault: ok"
