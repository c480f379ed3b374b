#!/bin/bash
# SPDX-License-Identifier: MIT
# The nbd protocol driver (protocols/nbd.c) through a small libvdk program:
# read, write, map and zero over nbd+unix:// against qemu-nbd and vdk-nbd,
# and over nbds+unix:// with a PSK against vdk-nbd.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
: "${VDK_NBD_CLIENT:?}"
S=$T/s.sock
Q=$T/q.sock
qimg create -f raw "$T/a.raw" 8M >/dev/null
retry_setup qemu-io -f raw -c 'write -P 0x61 1M 1M' -c 'write -P 0x62 5M 512k' "$T/a.raw" >/dev/null
cp "$T/a.raw" "$T/orig.raw"
head -c 8M /dev/urandom >"$T/rand.raw"

# Against qemu-nbd.
qemu-nbd -k "$Q" -f raw -x q -t -e 8 "$T/a.raw" &
QPID=$!
trap 'kill -KILL $QPID 2>/dev/null || true; if [ -n "$NBD_PID" ]; then kill -KILL "$NBD_PID" 2>/dev/null || true; fi; rm -rf "$T"' EXIT
i=0; while [ ! -S "$Q" ]; do sleep 0.05; i=$((i+1)); [ $i -lt 600 ] || fail "qemu-nbd"; done
"$VDK_NBD_CLIENT" read "$(uri "$Q" q)" "$T/q-out.raw"
cmp -s "$T/orig.raw" "$T/q-out.raw" || fail "read through qemu-nbd differs"
"$VDK_NBD_CLIENT" map "$(uri "$Q" q)" >"$T/q-map"
grep -q '^1048576 1048576 data$' "$T/q-map" || { cat "$T/q-map"; fail "map through qemu-nbd"; }
grep -q '^2097152 3145728 zero$' "$T/q-map" || { cat "$T/q-map"; fail "map hole through qemu-nbd"; }
"$VDK_NBD_CLIENT" write "$(uri "$Q" q)" "$T/rand.raw"
"$VDK_NBD_CLIENT" zero "$(uri "$Q" q)" 65536 131072
kill -TERM $QPID; wait $QPID || true
head -c 65536 "$T/rand.raw" >"$T/expect.raw"
head -c 131072 /dev/zero >>"$T/expect.raw"
tail -c +196609 "$T/rand.raw" >>"$T/expect.raw"
cmp -s "$T/a.raw" "$T/expect.raw" || fail "write/zero through qemu-nbd differs"

# Against vdk-nbd (multi-conn: the driver opens a small pool).
cp "$T/orig.raw" "$T/a.raw"
start_nbd "$S" -t -f raw -x v "$T/a.raw"
"$VDK_NBD_CLIENT" read "$(uri "$S" v)" "$T/v-out.raw"
cmp -s "$T/orig.raw" "$T/v-out.raw" || fail "read through vdk-nbd differs"
"$VDK_NBD_CLIENT" map "$(uri "$S" v)" >"$T/v-map"
grep -q '^5242880 524288 data$' "$T/v-map" || { cat "$T/v-map"; fail "map through vdk-nbd"; }
"$VDK_NBD_CLIENT" write "$(uri "$S" v)" "$T/rand.raw"
"$VDK_NBD_CLIENT" zero "$(uri "$S" v)" 65536 131072
stop_nbd
cmp -s "$T/a.raw" "$T/expect.raw" || fail "write/zero through vdk-nbd differs"

# vdk-img over nbd+unix://: info, map (same output as qemu-img map),
# convert out and in, compare.
cp "$T/expect.raw" "$T/a.raw"
start_nbd "$S" -t -f raw -x v "$T/a.raw"
"$VDK_IMG" info "$(uri "$S" v)" | grep -q 'virtual size: 8 MiB' || fail "vdk-img info over nbd"
for o in human json; do
    "$VDK_IMG" map --output=$o "$(uri "$S" v)" >"$T/vmap.$o"
    qimg map --output=$o "$(uri "$S" v)" >"$T/qmap.$o"
    cmp -s "$T/vmap.$o" "$T/qmap.$o" || { diff "$T/vmap.$o" "$T/qmap.$o"; fail "map --output=$o differs from qemu-img"; }
done
"$VDK_IMG" convert -O raw "$(uri "$S" v)" "$T/conv.raw"
cmp -s "$T/conv.raw" "$T/expect.raw" || fail "vdk-img convert from nbd"
"$VDK_IMG" compare "$(uri "$S" v)" "$T/expect.raw" >/dev/null || fail "vdk-img compare over nbd"
"$VDK_IMG" convert -n -O raw "$T/orig.raw" "$(uri "$S" v)"
"$VDK_IMG" compare "$(uri "$S" v)" "$T/orig.raw" >/dev/null || fail "vdk-img convert into nbd"
stop_nbd
cmp -s "$T/a.raw" "$T/orig.raw" || fail "convert into nbd did not reach the file"
cp "$T/expect.raw" "$T/a.raw"

# nbd:// over TCP.
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VDK_NBD" -b 127.0.0.1 -p "$PORT" -t -f raw -x v "$T/a.raw" 2>>"$T/nbd.log" &
NBD_PID=$!
i=0
until $PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$PORT" 2>/dev/null; do
    sleep 0.05; i=$((i + 1)); [ $i -lt 600 ] || fail "vdk-nbd did not listen on TCP"
done
"$VDK_NBD_CLIENT" read "nbd://127.0.0.1:$PORT/v" "$T/tcp-out.raw"
cmp -s "$T/expect.raw" "$T/tcp-out.raw" || fail "read over nbd:// differs"
stop_nbd

# TLS with a PSK, and a read-only export refusing a read-write open.
printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$T/k.psk"
start_nbd "$S" -t -f raw -x v -r --tls-psk="$T/k.psk" "$T/a.raw"
"$VDK_NBD_CLIENT" read "nbds+unix://alice@/v?socket=$S&tls-psk-file=$T/k.psk" "$T/t-out.raw"
cmp -s "$T/expect.raw" "$T/t-out.raw" || fail "read over TLS differs"
expect_fail 'read-only' "$VDK_NBD_CLIENT" write "nbds+unix://alice@/v?socket=$S&tls-psk-file=$T/k.psk" "$T/rand.raw"
expect_fail 'cannot connect' "$VDK_NBD_CLIENT" read "$(uri "$S" v)" "$T/x.raw"
expect_fail 'cannot connect' "$VDK_NBD_CLIENT" read "nbd+unix:///v?socket=$T/nosuch" "$T/x.raw"
stop_nbd
echo ok
