# SPDX-License-Identifier: MIT
# Shared by the snapshot and backing-chain tests.

# qemu-img check must find neither corruption nor leaks.
clean() {
    qemu-img check "$1" >"$T/.check" 2>&1 || { cat "$T/.check" >&2; fail "qemu-img check $1 after $2"; }
}

# qemu-io, quiet (qcow2 unless -f is given first).
qio() { retry_setup qemu-io "$@" >/dev/null || fail "qemu-io $*"; }

# Guest bytes of snapshot OPTS (snapshot.name=... / snapshot.id=...) of a
# qcow2 image, read by vdk, into OUT.
vdk_snap_raw() {
    "$VDK_IMG" convert -O raw --image-opts "driver=qcow2,file.filename=$1,$2" "$3" ||
        fail "vdk cannot read snapshot $2 of $1"
}

# Rewrite IMG through vdk's write path: its current content with 1 MiB of
# random data at 6 MiB, written by convert -n (every cluster, zeros too).
write_through_vdk() {
    qemu-img convert -O raw "$1" "$T/.w.raw"
    head -c 1048576 /dev/urandom | dd of="$T/.w.raw" bs=1M seek=6 conv=notrunc status=none
    "$VDK_IMG" convert -n -f raw -O qcow2 "$T/.w.raw" "$1" || fail "vdk convert -n into $1"
}

# One top-level field of a JSON document on stdin.
json_field() {
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# The "snapshots" array of `TOOL info --output=json IMG`, normalised.
json_snapshots() {
    "$1" info --output=json "$2" |
        /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("snapshots"), sort_keys=True, indent=1))'
}

# Big-endian integer of WIDTH bytes at OFF of FILE.
be_at() {
    /usr/bin/python3 -c 'import sys
with open(sys.argv[1], "rb") as f:
    f.seek(int(sys.argv[2])); print(int.from_bytes(f.read(int(sys.argv[3])), "big"))' "$@"
}

# Store VAL as a big-endian integer of WIDTH bytes at OFF of FILE.
put_be() {
    /usr/bin/python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(int(sys.argv[4]).to_bytes(int(sys.argv[3]), "big"))' "$@"
}
