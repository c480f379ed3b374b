#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-nbd with the real clients: nbdinfo (--json, --list, --map, allocation
# depth), nbdcopy both ways checked with qemu-img compare, qemu-img and
# qemu-io over nbd+unix://, several exports, read-only exports, SIGTERM.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/nbd/common.sh"
S=$T/s.sock

# A sparse raw image with data at 1M..3M and 8M..9M.
qimg create -f raw "$T/a.raw" 16M >/dev/null
retry_setup qemu-io -f raw -c 'write -P 0xab 1M 2M' -c 'write -P 0x5c 8M 1M' "$T/a.raw" >/dev/null
cp "$T/a.raw" "$T/orig.raw"
qimg create -f raw "$T/b.raw" 4M >/dev/null

start_nbd "$S" -t -A -f raw -x disk -D "the disk" "$T/a.raw" \
    --export name=small,file="$T/b.raw",format=raw,readonly=on,description=tiny

# nbdinfo --json: size, flags, contexts, block sizes.
nbdinfo --json "$(uri "$S" disk)" >"$T/info.json"
$PY - "$T/info.json" <<'PYEOF'
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-size"] == 16 << 20, e
assert e["export-name"] == "disk"
assert not e["is_read_only"] and e["can_flush"] and e["can_fua"] and e["can_trim"]
assert e["can_zero"] and e["can_fast_zero"] and e["can_df"] and e["can_multi_conn"]
assert "base:allocation" in e["contexts"] and "qemu:allocation-depth" in e["contexts"]
assert e["block_size_minimum"] == 1 and e["block_size_maximum"] == 32 << 20
assert e["description"] == "the disk", e
PYEOF

# --list shows both exports with their descriptions.
nbdinfo --list --json "$(uri "$S")" >"$T/list.json"
$PY - "$T/list.json" <<'PYEOF'
import json, sys
ex = {e["export-name"]: e for e in json.load(open(sys.argv[1]))["exports"]}
assert set(ex) == {"disk", "small"}, ex
assert ex["small"]["is_read_only"] and ex["small"]["export-size"] == 4 << 20
assert ex["small"].get("export-description") == "tiny" or ex["small"].get("description") == "tiny", ex["small"]
PYEOF

# --map: same extents as qemu-img map reports on the file itself.
nbdinfo --map "$(uri "$S" disk)" | awk '{print $1, $2, $3}' >"$T/map"
grep -q '^1048576 2097152 0$' "$T/map" || { cat "$T/map"; fail "data extent at 1M missing"; }
grep -q '^8388608 1048576 0$' "$T/map" || { cat "$T/map"; fail "data extent at 8M missing"; }
grep -q '^3145728 5242880 3$' "$T/map" || { cat "$T/map"; fail "hole at 3M missing"; }
nbdinfo --map=qemu:allocation-depth "$(uri "$S" disk)" >"$T/depth"
[ "$(awk '{print $1, $2, $3}' "$T/depth")" = "0 16777216 1" ] || { cat "$T/depth"; fail "allocation depth"; }

# nbdcopy out and in, compared with qemu-img compare.
nbdcopy "$(uri "$S" disk)" "$T/copy.raw"
qimg compare -f raw -F raw "$T/orig.raw" "$T/copy.raw" >/dev/null || fail "nbdcopy out differs"
retry_setup qemu-io -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 5M 3M' -c 'write -z 8M 512k' \
    "$T/copy.raw" >/dev/null
nbdcopy "$T/copy.raw" "$(uri "$S" disk)"
nbdcopy "$(uri "$S" disk)" "$T/back.raw"
qimg compare -f raw -F raw "$T/copy.raw" "$T/back.raw" >/dev/null || fail "nbdcopy in differs"

# qemu-img and qemu-io as clients.
qimg info "$(uri "$S" disk)" | grep -q 'virtual size: 16 MiB' || fail "qemu-img info"
qimg convert -f raw -O raw "$(uri "$S" disk)" "$T/conv.raw"
qimg compare -f raw -F raw "$T/copy.raw" "$T/conv.raw" >/dev/null || fail "qemu-img convert"
qemu-io -f raw -c 'write -P 0x77 4000 100000' -c 'read -P 0x77 4000 100000' \
    -c 'write -z -u 12M 1M' -c 'read -P 0 12M 1M' -c 'flush' -c 'discard 13M 1M' \
    "$(uri "$S" disk)" >"$T/qio" || fail "qemu-io"
grep -q 'Pattern verification failed' "$T/qio" && fail "qemu-io pattern"
qimg compare -f raw -F raw "$(uri "$S" disk)" "$T/a.raw" >/dev/null || fail "server and file differ"

# The read-only export refuses writes; an unknown export is refused.
expect_fail 'read-only|Operation not permitted|Permission denied' \
    qemu-io -f raw -c 'write 0 4k' "$(uri "$S" small)"
expect_fail '.' nbdinfo "$(uri "$S" nosuch)"
# ... also when the client does not check the flags first.
expect_fail 'write refused.*EPERM' $PY -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1]); h.set_strict_mode(0)
try:
    h.pwrite(b'x' * 512, 0)
except nbd.Error as e:
    sys.exit('write refused: ' + str(e))
" "$(uri "$S" small)"

# SIGTERM: exit 0, image flushed and closed, socket removed.
stop_nbd
[ ! -e "$S" ] || fail "socket left behind"
cmp -s "$T/copy.raw" "$T/orig.raw" && fail "writes did not reach the file"

# Without -t the server leaves after its last client.
start_nbd "$S" -f raw "$T/b.raw"
nbdinfo "$(uri "$S")" >/dev/null
wait "$NBD_PID" || fail "non-persistent server exit status"
NBD_PID=

# -s: clients write to a throwaway overlay; the file never changes.
cp "$T/b.raw" "$T/b0.raw"
cp "$T/a.raw" "$T/a0.raw"
start_nbd "$S" -t -s -f raw "$T/b.raw" --export name=snap,file="$T/a.raw",format=raw,snapshot=on
nbdinfo --json "$(uri "$S")" | grep -q '"is_read_only": false' || fail "-s export is read-only"
qemu-io -f raw -c 'write -P 0xee 0 1M' -c 'read -P 0xee 0 1M' "$(uri "$S")" >"$T/qio"
grep -q 'Pattern verification failed' "$T/qio" && fail "-s: overlay read back"
qemu-io -f raw -c 'write -P 0xef 1M 1M' "$(uri "$S" snap)" >/dev/null
$PY -c "
import nbd, sys
h = nbd.NBD(); h.connect_uri(sys.argv[1])
assert h.pread(4096, 1 << 20) == b'\xef' * 4096
" "$(uri "$S" snap)" || fail "-s: second client does not see the first one's writes"
stop_nbd
cmp -s "$T/b.raw" "$T/b0.raw" || fail "-s wrote to the image"
cmp -s "$T/a.raw" "$T/a0.raw" || fail "snapshot=on wrote to the image"
# --image-opts, --cache=none (O_DIRECT) and --discard=unmap: a trim
# punches a hole that base:allocation then reports.
retry_setup qemu-io -f raw -c 'write -P 0x44 0 4M' "$T/b.raw" >/dev/null
start_nbd "$S" -t --image-opts --cache=none --discard=unmap "driver=raw,file.filename=$T/b.raw"
qemu-io -f raw -c 'discard 1M 1M' -c 'read -P 0x44 0 1M' -c 'read -P 0 1M 1M' \
    -c 'write -P 0x45 3M 4k' "$(uri "$S")" >"$T/qio"
grep -q 'Pattern verification failed' "$T/qio" && fail "trim/cache=none data"
nbdinfo --map "$(uri "$S")" | awk '{print $1, $2, $3}' | grep -qx '1048576 1048576 3' \
    || { nbdinfo --map "$(uri "$S")"; fail "trim with --discard=unmap left no hole"; }
stop_nbd
qemu-io -f raw -c 'read -P 0x45 3M 4k' "$T/b.raw" | grep -q 'Pattern verification failed' \
    && fail "cache=none write lost"

# systemd socket activation: the listening socket arrives as fd 3.
$PY - "$VDK_NBD" "$T/act.sock" "$T/b.raw" <<'PYEOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[2] + ".tmp"); s.listen(4)
os.rename(sys.argv[2] + ".tmp", sys.argv[2])  # appears once listening
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1")
os.execv(sys.argv[1], [sys.argv[1], "-f", "raw", sys.argv[3]])
PYEOF
APID=$!
i=0; while [ ! -S "$T/act.sock" ]; do sleep 0.05; i=$((i+1)); [ $i -lt 400 ] || fail "activation"; done
nbdinfo --size "$(uri "$T/act.sock")" | grep -qx 4194304 || fail "socket activation"
wait "$APID" || fail "activated server exit status"

# --fork and --pid-file: the parent returns once the server listens.
"$VDK_NBD" --fork --pid-file="$T/pid" -k "$S" -t -f raw "$T/b.raw"
[ -S "$S" ] && [ -s "$T/pid" ] || fail "--fork: not listening or no pid file"
nbdinfo --size "$(uri "$S")" | grep -qx 4194304 || fail "--fork server"
fpid=$(cat "$T/pid")
kill -TERM "$fpid"
i=0; while kill -0 "$fpid" 2>/dev/null; do sleep 0.05; i=$((i+1)); [ $i -lt 600 ] || fail "--fork server did not stop"; done
[ ! -e "$T/pid" ] || fail "pid file left behind"

expect_fail 'nothing to export' "$VDK_NBD" -k "$S"
expect_fail 'invalid port' "$VDK_NBD" -p 99999 "$T/b.raw"
expect_fail "invalid option 'bogus'" "$VDK_NBD" -k "$S" --export name=x,file="$T/b.raw",bogus=1
echo ok
