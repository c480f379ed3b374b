#!/bin/bash
# SPDX-License-Identifier: MIT
# TLS: X.509 certificates made now with openssl, and pre-shared keys
# (gnutls's psktool format) -- both with libnbd (gnutls) as the client via
# nbdinfo, nbdcopy and nbdsh, and with qemu-img for X.509.  Plaintext is
# refused under --tls=require and allowed under --tls=on.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock
C=$T/pki
mkdir -p "$C"
qimg create -f raw "$T/a.raw" 4M >/dev/null
retry_setup qemu-io -f raw -c 'write -P 0x3c 0 1M' "$T/a.raw" >/dev/null

# A CA and a server certificate for localhost.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vdk-test-ca \
    -keyout "$C/ca-key.pem" -out "$C/ca-cert.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$C/server-key.pem" -out "$C/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$C/ext"
openssl x509 -req -in "$C/server.csr" -CA "$C/ca-cert.pem" -CAkey "$C/ca-key.pem" \
    -CAcreateserial -days 2 -extfile "$C/ext" -out "$C/server-cert.pem" 2>/dev/null
mkdir -p "$T/client"
cp "$C/ca-cert.pem" "$T/client/"

# --- X.509, TLS required ---
start_nbd "$S" -t -f raw -x disk --tls=require --tls-certificates="$C" "$T/a.raw"
X509="nbds+unix:///disk?socket=$S&tls-certificates=$T/client"
nbdinfo --json "$X509" >"$T/info.json"
grep -q '"TLS": true' "$T/info.json" || fail "nbdinfo did not use TLS"
nbdcopy "$X509" "$T/out.raw"
cmp -s "$T/a.raw" "$T/out.raw" || fail "X.509 read differs"
retry_setup qemu-io -f raw -c 'write -P 0x99 2M 1M' "$T/out.raw" >/dev/null
nbdcopy "$T/out.raw" "$X509"
$PY - "$X509" <<'PYEOF' || fail "nbdsh over TLS"
import sys, nbd
h = nbd.NBD(); h.set_uri_allow_local_file(True); h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated()
assert h.pread(4096, 2 << 20) == b"\x99" * 4096
buf = b"".join(bytes([i]) * 65536 for i in range(64))
h.pwrite(buf, 0); h.flush()
assert h.pread(len(buf), 0) == buf
h.shutdown()
PYEOF
# qemu-img with its own TLS credentials object.
qimg info --object tls-creds-x509,id=tls0,endpoint=client,dir="$T/client" \
    --image-opts "driver=nbd,path=$S,export=disk,tls-creds=tls0,tls-hostname=localhost" \
    | grep -q 'virtual size: 4 MiB' || fail "qemu-img over TLS"
# Plaintext refused: NBD_REP_ERR_TLS_REQD on the wire.
expect_fail 'TLS|tls|not supported' nbdinfo "nbd+unix:///disk?socket=$S"
$PY - "$S" <<'PYEOF' || fail "plaintext GO under --tls=require"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.recv(18, socket.MSG_WAITALL); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454f5054, 7, 10) + struct.pack(">I", 4) + b"disk" + b"\0\0")
m, o, t, l = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
assert t == (1 << 31) | 5, hex(t)
s.recv(l, socket.MSG_WAITALL)
s.sendall(struct.pack(">QII", 0x49484156454f5054, 1, 4) + b"disk")
assert s.recv(1) == b""  # EXPORT_NAME in the clear: hang up
PYEOF
expect_fail '.' qemu-img info "nbd+unix:///disk?socket=$S"
# A client that gives up in the middle of the TLS handshake.
$PY - "$S" <<'PYEOF'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.recv(18, socket.MSG_WAITALL); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454f5054, 5, 0))
s.recv(20, socket.MSG_WAITALL)
s.sendall(b"\x16\x03\x01\x00\x05hello")  # a broken ClientHello
s.close()
# Plaintext queued behind STARTTLS (an injection attempt): no ACK, hang up.
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])
s.recv(18, socket.MSG_WAITALL); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454f5054, 5, 0) +
          struct.pack(">QII", 0x49484156454f5054, 1, 4) + b"disk")
assert s.recv(20) == b"", "STARTTLS with queued plaintext was answered"
PYEOF
nbdinfo "$X509" >/dev/null || fail "server died after a failed handshake"
stop_nbd

# --- X.509 over TCP, with the client checking the host name ---
PORT=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VDK_NBD" -b 127.0.0.1 -p "$PORT" -t -f raw -x disk --tls-certificates="$C" "$T/a.raw" 2>>"$T/nbd.log" &
NBD_PID=$!
i=0
until $PY -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1]))).close()' "$PORT" 2>/dev/null; do
    kill -0 "$NBD_PID" || fail "vdk-nbd on TCP exited"
    sleep 0.05; i=$((i + 1)); [ $i -lt 600 ] || fail "vdk-nbd did not listen on TCP"
done
nbdinfo --json "nbds://localhost:$PORT/disk?tls-certificates=$T/client" | grep -q '"TLS": true' \
    || fail "X.509 over TCP"
nbdcopy "nbds://localhost:$PORT/disk?tls-certificates=$T/client" "$T/tcp.raw"
cmp -s "$T/tcp.raw" "$T/a.raw" || fail "TCP read differs" 
grep -q '127.0.0.1:[0-9]*: export .disk., TLSv1' "$T/nbd.log" || { cat "$T/nbd.log"; fail "no connection log line"; }
stop_nbd

# --- X.509, TLS optional: both work ---
start_nbd "$S" -t -f raw -x disk --tls=on --tls-certificates="$C" "$T/a.raw"
nbdinfo --json "nbd+unix:///disk?socket=$S" | grep -q '"TLS": false' || fail "plaintext under --tls=on"
nbdinfo --json "$X509" | grep -q '"TLS": true' || fail "TLS under --tls=on"
stop_nbd

# --- PSK ---
key=$(openssl rand -hex 32)
printf 'alice:%s\n' "$key" >"$T/keys.psk"
printf 'alice:%s\n' "$(openssl rand -hex 32)" >"$T/wrong.psk"
start_nbd "$S" -t -f raw -x disk --tls=require --tls-psk="$T/keys.psk" "$T/a.raw"
PSK="nbds+unix://alice@/disk?socket=$S&tls-psk-file=$T/keys.psk"
nbdinfo --json "$PSK" | grep -q '"TLS": true' || fail "PSK with nbdinfo"
nbdcopy "$PSK" "$T/psk.raw"
nbdcopy "$T/psk.raw" "$PSK"
$PY - "$PSK" <<'PYEOF' || fail "nbdsh with PSK"
import sys, nbd
h = nbd.NBD(); h.set_uri_allow_local_file(True); h.connect_uri(sys.argv[1])
assert h.get_tls_negotiated()
h.pwrite(b"\x5a" * 1048576, 1048576, nbd.CMD_FLAG_FUA)
assert h.pread(1048576, 1048576) == b"\x5a" * 1048576
h.shutdown()
PYEOF
# qemu-img (gnutls too) with a PSK credentials object.
mkdir -p "$T/qpsk"
cp "$T/keys.psk" "$T/qpsk/keys.psk"
qimg info --object tls-creds-psk,id=tls0,endpoint=client,dir="$T/qpsk",username=alice \
    --image-opts "driver=nbd,path=$S,export=disk,tls-creds=tls0" | grep -q 'virtual size: 4 MiB' \
    || fail "qemu-img with PSK"
grep -q 'TLSv1.3' "$T/nbd.log" || fail "PSK did not use TLS 1.3"
expect_fail '.' nbdinfo "nbds+unix://alice@/disk?socket=$S&tls-psk-file=$T/wrong.psk"
expect_fail '.' nbdinfo "nbds+unix://bob@/disk?socket=$S&tls-psk-file=$T/keys.psk"
expect_fail 'TLS|tls|not supported' nbdinfo "nbd+unix:///disk?socket=$S"
stop_nbd

# Bad TLS setups are refused at start.
expect_fail 'needs --tls-certificates' "$VDK_NBD" -k "$S" --tls=require "$T/a.raw"
expect_fail 'cannot load TLS certificate' "$VDK_NBD" -k "$S" --tls-certificates="$T/none" "$T/a.raw"
printf 'alice:zz\n' >"$T/bad.psk"
expect_fail 'hexkey|hexadecimal' "$VDK_NBD" -k "$S" --tls-psk="$T/bad.psk" "$T/a.raw"
echo ok
