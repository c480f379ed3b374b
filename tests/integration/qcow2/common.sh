# SPDX-License-Identifier: MIT
# Shared by the qcow2 integration tests: the test driver and helpers.
. "$VDK_SRC/tests/integration/lib.sh"
QT=${QCOW2_TOOL:-$VDK_BUILD/tests/unit/qcow2/qcow2-tool}
[ -x "$QT" ] || fail "qcow2-tool not built"

# Guest bytes of IMG through vdk must equal qemu-img's raw conversion.
same_as_qemu() {
    local img=$1
    qemu-img convert -O raw "$img" "$T/.qemu.raw" || fail "qemu-img cannot read $img"
    "$QT" cat "$img" >"$T/.vdk.raw" || fail "vdk cannot read $img"
    cmp -s "$T/.qemu.raw" "$T/.vdk.raw" || fail "vdk reads $img differently from qemu"
}

# qemu-img check must find no corruption and no leak.
qemu_clean() {
    qemu-img check "$1" >"$T/.check" 2>&1 || { cat "$T/.check" >&2; fail "qemu-img check $1"; }
}

# A few MiB of mixed content: random, text, zeros.
make_raw() {
    local out=$1 mib=${2:-4}
    head -c $((mib * 1024 * 1024)) /dev/urandom >"$out"
    yes "qcow2 text block for compression" | head -c 1048576 |
        dd of="$out" bs=1M seek=1 conv=notrunc status=none
    dd if=/dev/zero of="$out" bs=64k seek=40 count=6 conv=notrunc status=none
}

# qemu-io with discards passed through, quiet.
qio() { retry_setup qemu-io -d unmap -f qcow2 "$@" >/dev/null || fail "qemu-io $*"; }
