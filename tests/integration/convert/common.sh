# SPDX-License-Identifier: MIT
# Helpers for the convert tests (sourced after lib.sh).

# mkimg FILE SIZE [OFFSET:LENGTH:KIND ...] -- a sparse file of SIZE bytes
# with extents written at OFFSET: KIND r = random, t = text, z = explicit
# (allocated) zeros.  Everything else stays a hole.
mkimg() {
    local f=$1 size=$2; shift 2
    rm -f "$f"
    truncate -s "$size" "$f"
    local e off len kind
    for e in "$@"; do
        IFS=: read -r off len kind <<<"$e"
        case $kind in
        r) head -c "$len" /dev/urandom ;;
        t) yes 'the quick brown fox jumps over the lazy dog' | head -c "$len" ;;
        z) head -c "$len" /dev/zero ;;
        esac | dd of="$f" bs=64k seek="$off" oflag=seek_bytes conv=notrunc status=none
    done
}

# The allocation picture of an image as qemu-img sees it.
qmap() { qemu-img map --output=json "$1"; }

# same_map A B -- identical qemu-img map pictures
same_map() {
    diff <(qmap "$1") <(qmap "$2") >&2 || fail "map of $1 differs from $2"
}

# Allocated 512-byte blocks of a file.
blocks() { stat -c %b "$1"; }
