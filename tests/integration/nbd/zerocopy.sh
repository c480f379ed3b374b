#!/bin/bash
# SPDX-License-Identifier: MIT
# Large reads of read-only raw and qcow2 exports go out straight from the
# image file's page cache (nbd-server/zerocopy.c): with sendfile on plain
# sockets, from the mapped file when file.map=on over TLS.  The bytes must
# be the same as through the ordinary path: structured replies with holes,
# simple replies, unaligned ranges, a file truncated under the server by
# a program that ignores the locks (the tail reads as zeros), and writable
# exports (which keep the ordinary path).  Each read-only case also checks
# that the server did use sendfile (strace), so a change that quietly
# falls back to copying shows here.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
head -c 6M /dev/urandom >"$T/a.raw"
truncate -s 16M "$T/a.raw"                      # 10 MiB hole at the end
qemu-io -f raw -c 'write -z 1M 1M' -c 'write -P 0x5c 12M 512k' "$T/a.raw" >/dev/null
qimg convert -f raw -O qcow2 "$T/a.raw" "$T/a.qcow2"
cp "$T/a.raw" "$T/ref.raw"

check() { # what [uri]
    $PY - "${2:-$(uri "$S")}" "$T/ref.raw" "$1" <<'PYEOF' || fail "$1"
import random, sys, nbd
uri, ref, what = sys.argv[1:]
data = open(ref, "rb").read()
rng = random.Random(5)
for structured in (True, False):
    h = nbd.NBD()
    h.set_uri_allow_local_file(True)
    h.set_request_structured_replies(structured)
    h.connect_uri(uri)
    reads = [(0, 16 << 20), (0, 32 << 20 >> 1), (65536, 1 << 20), (6 << 20, 4 << 20),
             ((1 << 20) - 7, (2 << 20) + 11)]
    reads += [(rng.randrange(0, 15 << 20), rng.randrange(65536, 1 << 20)) for _ in range(40)]
    for off, ln in reads:
        ln = min(ln, (16 << 20) - off)
        got = h.pread(ln, off)
        if got != data[off:off + ln]:
            sys.exit("%s: read %d+%d (structured %s) differs" % (what, off, ln, structured))
    h.shutdown()
PYEOF
}

# Run CMD... with strace attached to the server, recording its sendfile,
# pread64 and mmap calls into FILE.
traced() { # FILE CMD...
    local out=$1; shift
    strace -f -qq -e trace=sendfile,pread64,mmap -o "$out" -p "$NBD_PID" &
    local st=$!
    # strace is attached once it has listed the process's threads.
    local i=0
    until [ -s "$out" ] || grep -q "TracerPid:[[:space:]]*$st" "/proc/$NBD_PID/status"; do
        i=$((i + 1)); [ "$i" -lt 200 ] || fail "strace did not attach"; sleep 0.05
    done
    "$@"
    kill -INT "$st"; wait "$st" 2>/dev/null || true
}

# check, and that the server sent data with sendfile (want=sendfile) or
# did not (want=none).  With sendfile, pipelined sequential reads
# (nbdcopy, several connections) must not read data into a buffer
# either: no pread64 larger than a metadata cluster.
check_sent() { # what want(sendfile|none) [uri]
    traced "$T/st" check "$1" "${3:-}"
    local n; n=$(grep -c 'sendfile(' "$T/st" || true)
    case $2 in
    sendfile) [ "$n" -gt 0 ] || fail "$1: no sendfile" ;;
    none) [ "$n" = 0 ] || fail "$1: $n sendfile calls" ;;
    esac
    [ "$2" = sendfile ] || return 0
    traced "$T/st" nbdcopy "$(uri "$S")" "$T/pipe.raw"
    same_file "$T/pipe.raw" "$T/ref.raw"
    local big
    big=$(awk '/pread64\(/ { n = $0; sub(/.*\.\.\., /, "", n); sub(/,.*/, "", n);
                             if (n + 0 > 65536) c++ } END { print c + 0 }' "$T/st")
    [ "$big" = 0 ] ||
        { grep pread64 "$T/st" | head -3 >&2; fail "$1: $big pipelined data reads through a buffer"; }
}

# The file protocol maps only with file.map=on (protocols/file.c says why);
# on plain sockets read-only exports send with sendfile either way, and
# the mapping serves TLS (below).
for m in off on; do
    raw() { echo "driver=raw,file.filename=$T/a.raw,file.map=$m"; }
    qc() { echo "driver=qcow2,file.filename=$T/a.qcow2,file.map=$m"; }
    start_nbd "$S" -t --image-opts "$(raw)"
    check_sent "raw, writable (ordinary path), map=$m" none
    stop_nbd
    start_nbd "$S" -t -r --image-opts "$(raw)"
    check_sent "raw, read-only, map=$m" sendfile
    stop_nbd
    start_nbd "$S" -t -r --image-opts "$(qc)"
    check_sent "qcow2, read-only, map=$m" sendfile
    stop_nbd
    start_nbd "$S" -t --image-opts "$(qc)"
    check_sent "qcow2, writable (ordinary path), map=$m" none
    stop_nbd

    # The file shrinks under a raw export: past the new end reads zeros.
    start_nbd "$S" -t -r --image-opts "$(raw)"
    truncate -s 4M "$T/a.raw"
    truncate -s 4M "$T/ref.raw"
    truncate -s 16M "$T/ref.raw"
    check "raw, file shrunk under the server, map=$m"
    stop_nbd
    qimg convert -f qcow2 -O raw "$T/a.qcow2" "$T/a.raw"   # whole again
    cp "$T/a.raw" "$T/ref.raw"
done
# Over TLS the cipher reads the mapped file or a buffer: the same bytes
# either way, and never sendfile, which would bypass the cipher.  A
# read-only export over TLS maps unless the file node says map=off
# (VDK_O_MAP); mappings of the image are MAP_SHARED, the allocator's are
# private.
printf 'zc:%s\n' "$(openssl rand -hex 32)" >"$T/keys.psk"
for m in off on default; do
    opt=",file.map=$m"
    [ "$m" != default ] || opt=
    start_nbd "$S" -t -r --tls=require --tls-psk="$T/keys.psk" \
        --image-opts "driver=qcow2,file.filename=$T/a.qcow2$opt"
    check_sent "qcow2, read-only, TLS, map=$m" none \
        "nbds+unix://zc@/?socket=$S&tls-psk-file=$T/keys.psk"
    n=$(grep -c 'MAP_SHARED' "$T/st" || true)
    case $m in
    off) [ "$n" = 0 ] || fail "TLS with map=off mapped the image" ;;
    *) [ "$n" -gt 0 ] || fail "TLS with map=$m read without a mapping" ;;
    esac
    stop_nbd
done
expect_fail "map" "$VDK_NBD" -k "$S" --image-opts "driver=raw,file.filename=$T/a.raw,file.map=maybe"
echo "zerocopy: ok"
