#!/bin/bash
# SPDX-License-Identifier: MIT
# convert --salvage: read errors (the fault filter) become zeros in the
# output, with one warning per failed range naming its offset and length,
# and exit 0 as qemu-img.  The output is byte-identical to what qemu-img
# convert --salvage makes of the same source with the same sectors failing
# through blkdebug (qemu-img warns once per 512-byte sector; its warned
# sectors are exactly the ranges vdk-img names).
. "$VDK_SRC/tests/integration/lib.sh"

qimg create -q -f raw "$T/s.raw" 8M
qemu-io -f raw -c 'write -P 0x5a 0 8M' "$T/s.raw" >/dev/null
qimg create -q -f qcow2 "$T/s.qcow2" 8M
qemu-io -f qcow2 -c 'write -P 0x33 0 3M' -c 'write -P 0x44 6M 1M' "$T/s.qcow2" >/dev/null

# blkdebug SRC FMT FIRST_SECTOR LAST_SECTOR: a json: source whose reads
# of those sectors of the file fail with EIO (blkdebug under the format
# node, where the format's data reads arm its rules; a rule matches one
# offset).
blkdebug() {
    local rules="" s
    for ((s = $3; s <= $4; s++)); do
        rules+="{\"event\":\"read_aio\",\"errno\":5,\"sector\":$s,\"once\":false},"
    done
    echo "json:{\"driver\":\"$2\",\"file\":{\"driver\":\"blkdebug\",\"inject-error\":[${rules%,}],\"image\":{\"driver\":\"file\",\"filename\":\"$1\"}}}"
}
fault() { # SRC FMT OFFSET LENGTH [ERRNO]
    echo "driver=fault,ops=read,errno=${5:-EIO},offset=$3,length=$4,file.driver=$2,file.file.filename=$1"
}

# host_of SRC FMT OFFSET: where the guest OFFSET lies in the file.
host_of() {
    qimg map -f "$2" --output=json "$1" | tr -d '{}[],"' | while read -r _ st _ ln _ _ _ _ _ _ _ _ _ ho; do
        if [ "$3" -ge "$st" ] && [ "$3" -lt $((st + ln)) ]; then echo $((ho + $3 - st)); fi
    done
}

# check_case SRC FMT OFFSET LENGTH OUT_FMT [hole]: the fault filter on
# [OFFSET, OFFSET+LENGTH) against blkdebug on the sectors it touches.  In
# a hole qemu-img reads nothing and warns of nothing (its copy is the
# plain one), while the fault filter reports its range as data, so
# vdk-img reads it and warns.
check_case() {
    local src=$1 fmt=$2 off=$3 len=$4 ofmt=$5 hole=${6:-}
    local first=$((off / 512)) last=$(((off + len - 1) / 512))
    local woff=$((first * 512)) wlen=$(((last - first + 1) * 512))
    local qsrc=(-f "$fmt" "$src")
    if [ -z "$hole" ]; then
        local host
        host=$(host_of "$src" "$fmt" "$woff")
        qsrc=("$(blkdebug "$src" "$fmt" $((host / 512)) $((host / 512 + last - first)))")
    fi
    qimg convert --salvage -O "$ofmt" "${qsrc[@]}" "$T/q.$ofmt" 2>"$T/q.err" ||
        fail "qemu-img convert --salvage ($fmt $off+$len)"
    local rc=0
    "$VDK_IMG" convert --salvage -O "$ofmt" --image-opts "$(fault "$src" "$fmt" $off $len)" \
        "$T/v.$ofmt" 2>"$T/v.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$T/v.err"; fail "convert --salvage ($fmt $off+$len) exit $rc"; }
    # One warning, for the whole range, whatever chunks and workers cut it.
    [ "$(cat "$T/v.err")" = "vdk-img: warning: error while reading offset $woff ($wlen bytes): Input/output error" ] ||
        { cat "$T/v.err"; fail "salvage warning ($fmt $off+$len)"; }
    # qemu-img's per-sector warnings cover exactly that range.
    local want="" o
    for ((o = woff; o < woff + wlen; o += 512)); do
        want+="qemu-img: warning: error while reading offset $o: Input/output error"$'\n'
    done
    [ -z "$hole" ] || want=""
    diff <(printf %s "$want") <(sort -t' ' -k7n "$T/q.err") >/dev/null ||
        fail "qemu-img's warnings ($fmt $off+$len) are not the range vdk-img names"
    qimg compare -q -f "$ofmt" -F "$ofmt" "$T/q.$ofmt" "$T/v.$ofmt" ||
        fail "salvaged copy differs from qemu-img's ($fmt $off+$len -> $ofmt)"
    [ "$ofmt" != raw ] || same_file "$T/q.raw" "$T/v.raw"
    [ "$ofmt" != qcow2 ] || qimg check -q "$T/v.qcow2" || fail "check of the salvaged copy"
}

check_case "$T/s.raw" raw $((1 << 20)) 65536 raw          # aligned, in data
check_case "$T/s.raw" raw 2000000 200000 raw              # unaligned, across a 2 MiB chunk
check_case "$T/s.qcow2" qcow2 $((2 << 20)) 4096 qcow2     # qcow2 to qcow2
check_case "$T/s.qcow2" qcow2 5000000 1 raw hole          # one byte, in a hole
check_case "$T/s.raw" raw 8388000 608 qcow2               # the last sectors

# Large: 3 MiB over two chunk boundaries, and all of it, still one warning.
"$VDK_IMG" convert --salvage -O raw --image-opts "$(fault "$T/s.raw" raw 1000000 3M)" \
    "$T/v.raw" 2>"$T/v.err" || fail "salvage 3M"
grep -qx "vdk-img: warning: error while reading offset 999936 (3146240 bytes): Input/output error" "$T/v.err" ||
    { cat "$T/v.err"; fail "salvage 3M warning"; }
"$VDK_IMG" convert --salvage -m 16 -W -O raw --image-opts "driver=fault,ops=read,file.driver=raw,file.file.filename=$T/s.raw" \
    "$T/v.raw" 2>"$T/v.err" || fail "salvage of an unreadable disk"
grep -qx "vdk-img: warning: error while reading offset 0 (8388608 bytes): Input/output error" "$T/v.err" ||
    { cat "$T/v.err"; fail "unreadable disk warning"; }
qemu-io -f raw -c 'read -P 0 0 8M' "$T/v.raw" | grep -q '^read' || fail "unreadable disk: not zeros"

# Several faults, another errno, compressed output, two sources.
"$VDK_IMG" convert --salvage -c -O qcow2 --image-opts "$(fault "$T/s.raw" raw 4096 512 ENOSPC)" \
    "$T/v.qcow2" 2>"$T/v.err" || fail "salvage -c"
grep -qx "vdk-img: warning: error while reading offset 4096 (512 bytes): No space left on device" "$T/v.err" ||
    { cat "$T/v.err"; fail "salvage ENOSPC warning"; }
qemu-io -f qcow2 -c 'read -P 0x5a 0 4096' -c 'read -P 0 4096 512' -c 'read -P 0x5a 4608 8384000' \
    "$T/v.qcow2" | grep -c '^read' | grep -qx 3 || fail "salvage -c contents"
qimg create -q -f raw "$T/s2.raw" 1M
"$VDK_IMG" convert --salvage -O raw --image-opts "$(fault "$T/s.raw" raw 0 512)" \
    "$(fault "$T/s2.raw" raw 1024 512)" "$T/v.raw" 2>"$T/v.err" || fail "salvage of two sources"
[ "$(wc -l <"$T/v.err")" -eq 2 ] && grep -q "s.raw.*offset 0 (512 bytes)" "$T/v.err" &&
    grep -q "s2.raw.*offset 1024 (512 bytes)" "$T/v.err" || { cat "$T/v.err"; fail "two sources"; }

# -q: no warnings.  A fault the copy never meets: no warning, same copy.
"$VDK_IMG" convert -q --salvage -O raw --image-opts "$(fault "$T/s.raw" raw 1M 1M)" "$T/v.raw" \
    2>"$T/v.err" || fail "salvage -q"
[ ! -s "$T/v.err" ] || fail "salvage -q printed: $(cat "$T/v.err")"
"$VDK_IMG" convert --salvage -O raw --image-opts "driver=fault,ops=write,file.driver=raw,file.file.filename=$T/s.raw" \
    "$T/v.raw" 2>"$T/v.err" || fail "salvage without a fault met"
[ ! -s "$T/v.err" ] && same_file "$T/s.raw" "$T/v.raw"

# Without --salvage the copy stops at the error (convert-fault.sh checks
# the offset); -C --salvage is refused with qemu-img's message.
expect_fail "error while reading at byte [0-9]+: Input/output error" \
    "$VDK_IMG" convert -O raw --image-opts "$(fault "$T/s.raw" raw 1M 64K)" "$T/v.raw"
qimg convert -C --salvage -O raw "$T/s.raw" "$T/q.raw" 2>"$T/q.err" && fail "qemu-img -C --salvage"
expect_fail "" "$VDK_IMG" convert -C --salvage -O raw "$T/s.raw" "$T/v.raw"
sed 's/^qemu-img:/vdk-img:/' "$T/q.err" | diff - "$T/.err" || fail "-C --salvage message"
echo "convert --salvage: ok"
