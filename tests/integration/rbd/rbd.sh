#!/bin/bash
# SPDX-License-Identifier: MIT
# The rbd protocol driver against a real one-node Ceph cluster (started
# once here, for every case; cluster.sh), with qemu-img, qemu-io and
# qemu-nbd's own rbd driver (qemu-block-extra) as the reference:
# convert both ways, map, snapshots, resize, --image-opts and namespaces,
# NBD exports read by nbdinfo/nbdcopy, block status that sees other
# clients' writes and its own discards, fio verify through vdk-nbd, commit
# and rebase onto an rbd base, vdk-boot on an rbd disk, the exclusive
# lock, every error case within a bounded time, and a stopped or killed
# OSD (a clear error or a retry, never wrong data).
#   VDK_RBD_CASES="convert map ..."  runs only those cases (in order).
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/rbd/cluster.sh"
VDK_NBD=${VDK_NBD:-$VDK_BUILD/nbd-server/vdk-nbd}
VDK_BOOT=${VDK_BOOT:-$VDK_BUILD/guest-boot/vdk-boot}

NBD_PIDS=()
cleanup() {
    local p
    for p in "${NBD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${NBD_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ceph_cluster_stop
    rm -rf "$T"
}
trap cleanup EXIT

"$VDK_IMG" --help >/dev/null
if "$VDK_IMG" info rbd:x/y 2>&1 | grep -q 'built without the rbd driver'; then
    fail "vdk was built without the rbd driver (meson -Drbd=enabled needs librbd-dev)"
fi

ceph_cluster_start "$T/ceph" || fail "the test cluster did not start"
echo "ceph test cluster up in ${CEPH_START_SECONDS} s (conf $CEPH_CONF)"

# Run CMD with a bound on its time; a hang is a failure of its own.
bounded() {
    local s=$1; shift
    local rc=0
    timeout -k 5 "$s" "$@" || rc=$?
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || fail "no answer within ${s}s: $*"
    return "$rc"
}
# Wait for background job PID, at most S seconds (then kill it and fail).
wait_bounded() {
    local s=$1 pid=$2 i
    for i in $(seq 1 $((s * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
        fail "job $pid still running after ${s}s"
    fi
    wait "$pid"
}
# expect_fail with a bound: the error case must end within S seconds.
expect_fail_within() {
    local s=$1 re=$2; shift 2
    local t0 t1
    t0=$(date +%s)
    expect_fail "$re" timeout -k 5 "$s" "$@"
    t1=$(date +%s)
    echo "  refused in $((t1 - t0)) s: $(head -n1 "$T/.err")"
}

# A source image: data, a zero run written as data, holes.
make_source() {
    qimg create -q -f qcow2 "$T/src.qcow2" 64M
    retry_setup qemu-io -f qcow2 -c "write -P 0x11 0 3M" -c "write -z 8M 4M" \
        -c "write -P 0x22 21M 1M" -c "write -P 0x33 62M 2M" "$T/src.qcow2" >/dev/null
    head -c 1M /dev/urandom >"$T/rand"
    retry_setup qemu-io -f qcow2 -c "write -s $T/rand 40M 1M" "$T/src.qcow2" >/dev/null
}

# Raw bytes of an rbd image through qemu-img (the reference reader).
rbd_bytes() { qimg convert -f raw -O raw "rbd:vdk/$1" "$2"; }

start_vdk_nbd() { # SOCKET ARGS...
    local s=$1; shift
    "$VDK_NBD" -k "$s" "$@" >"$T/vdk-nbd.log" 2>&1 &
    NBD_PIDS+=($!)
    wait_socket "$s" $!
}
start_qemu_nbd() {
    local s=$1; shift
    qemu-nbd -k "$s" "$@" >"$T/qemu-nbd.log" 2>&1 &
    NBD_PIDS+=($!)
    wait_socket "$s" $!
}
wait_socket() {
    local i
    for i in $(seq 1 300); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || { cat "$T"/*nbd.log >&2; fail "NBD server exited"; }
        sleep 0.1
    done
    fail "NBD server did not listen on $1 in 30 s"
}
stop_nbd() { kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; }
uri() { echo "nbd+unix:///?socket=$1"; }

case_convert() {
    make_source
    # qcow2 -> rbd: vdk-img and qemu-img, then both read back by qemu-img.
    bounded 300 "$VDK_IMG" convert -f qcow2 -O raw "$T/src.qcow2" rbd:vdk/v-conv
    bounded 300 qemu-img convert -f qcow2 -O raw "$T/src.qcow2" rbd:vdk/q-conv
    rbd_bytes v-conv "$T/v.raw"
    rbd_bytes q-conv "$T/q.raw"
    qimg convert -f qcow2 -O raw "$T/src.qcow2" "$T/ref.raw"
    same_file "$T/v.raw" "$T/ref.raw"
    same_file "$T/q.raw" "$T/ref.raw"
    # Sparse: vdk's copy allocates no more objects than qemu-img's.
    local va qa
    va=$(rbd du vdk/v-conv | awk '$1 == "v-conv" { print $3 $4 }')
    qa=$(rbd du vdk/q-conv | awk '$1 == "q-conv" { print $3 $4 }')
    [ "$va" = "$qa" ] || fail "vdk's rbd copy uses $va, qemu-img's $qa"
    # rbd -> raw and qcow2, against qemu-img's own results.
    bounded 300 "$VDK_IMG" convert -f raw -O raw rbd:vdk/v-conv "$T/back-v.raw"
    bounded 300 qemu-img convert -f raw -O raw rbd:vdk/v-conv "$T/back-q.raw"
    same_file "$T/back-v.raw" "$T/back-q.raw"
    same_file "$T/back-v.raw" "$T/ref.raw"
    bounded 300 "$VDK_IMG" convert -f raw -O qcow2 rbd:vdk/v-conv "$T/back-v.qcow2"
    bounded 300 qemu-img convert -f raw -O qcow2 rbd:vdk/v-conv "$T/back-q.qcow2"
    same_file "$T/back-v.qcow2" "$T/back-q.qcow2"
    qimg check -q "$T/back-v.qcow2" || fail "qemu-img check of the qcow2 copy"
    # vdk reads qemu-img's rbd copy the same.
    "$VDK_IMG" compare -f raw -F raw rbd:vdk/q-conv "$T/ref.raw" >/dev/null ||
        fail "vdk-img compare: qemu-img's rbd copy differs"
    # convert -n into an existing image, and --image-opts as the target.
    qimg create -q -f raw rbd:vdk/v-n 64M
    bounded 300 "$VDK_IMG" convert -n -f qcow2 "$T/src.qcow2" --target-image-opts \
        driver=rbd,pool=vdk,image=v-n
    rbd_bytes v-n "$T/n.raw"
    same_file "$T/n.raw" "$T/ref.raw"
}

case_map() {
    local img
    for img in v-conv q-conv; do
        "$VDK_IMG" map --output=json -f raw "rbd:vdk/$img" >"$T/map-v.json"
        qimg map --output=json -f raw "rbd:vdk/$img" >"$T/map-q.json"
        cmp -s "$T/map-v.json" "$T/map-q.json" ||
            { diff "$T/map-q.json" "$T/map-v.json" >&2; fail "map of $img differs from qemu-img's"; }
    done
    grep -q '"data": false' "$T/map-v.json" || fail "map shows no hole"
    # An image without fast-diff: block status still finds the holes.
    qimg create -q -f raw rbd:vdk/nofd 32M
    rbd feature disable vdk/nofd fast-diff object-map
    qemu-io -f raw -c "write -P 0x44 4M 4M" rbd:vdk/nofd >/dev/null
    "$VDK_IMG" map --output=json -f raw rbd:vdk/nofd >"$T/map-nofd.json"
    grep -q '"start": 4194304, "length": 4194304, "depth": 0, "present": true, "zero": false, "data": true' \
        "$T/map-nofd.json" || { cat "$T/map-nofd.json" >&2; fail "map without fast-diff"; }
}

case_info() {
    "$VDK_IMG" info --output=json -f raw rbd:vdk/v-conv >"$T/info-v.json"
    qimg info --output=json -f raw rbd:vdk/v-conv >"$T/info-q.json"
    local k
    for k in virtual-size cluster-size format dirty-flag; do
        [ "$(jq -c ".\"$k\"" "$T/info-v.json")" = "$(jq -c ".\"$k\"" "$T/info-q.json")" ] ||
            fail "info $k: vdk $(jq -c ".\"$k\"" "$T/info-v.json"), qemu-img $(jq -c ".\"$k\"" "$T/info-q.json")"
    done
    # --image-opts and a namespace; create -o object size and features.
    rbd namespace create vdk/ns1
    "$VDK_IMG" create -q -f raw rbd:vdk/ns1/small 16M \
        -o cluster_size=1M,features=layering+exclusive-lock
    rbd info vdk/ns1/small | grep -q 'order 20 (1 MiB objects)' || fail "object size not set"
    rbd info vdk/ns1/small | grep -q 'features: layering, exclusive-lock$' ||
        fail "features not set"
    "$VDK_IMG" info --image-opts driver=rbd,pool=vdk,namespace=ns1,image=small \
        | grep -q 'virtual size: 16 MiB' || fail "--image-opts info"
    qemu-io -f raw -c "write -P 0x66 0 1M" rbd:vdk/ns1/small >/dev/null
    # conf= and id= in the name, as qemu-img writes them.
    "$VDK_IMG" info "rbd:vdk/ns1/small:conf=$CEPH_CONF:id=admin" | grep -q '16 MiB' ||
        fail "conf= and id= in the name"
    "$VDK_IMG" create -q -f raw rbd:vdk/big 1G -o cluster_size=32M
    rbd info vdk/big | grep -q 'order 25' || fail "32M objects"
}

case_snapshot() {
    qimg create -q -f raw rbd:vdk/snap 16M
    qemu-io -f raw -c "write -P 0x01 0 4M" rbd:vdk/snap >/dev/null
    rbd_bytes snap "$T/s1.raw"
    "$VDK_IMG" snapshot -c s1 -f raw rbd:vdk/snap
    qemu-io -f raw -c "write -P 0x02 1M 2M" rbd:vdk/snap >/dev/null
    rbd_bytes snap "$T/s2.raw"
    cmp -s "$T/s1.raw" "$T/s2.raw" && fail "the write after the snapshot did not land"
    # The snapshot reads as it was, read-only.
    "$VDK_IMG" convert -f raw -O raw rbd:vdk/snap@s1 "$T/at-s1.raw"
    same_file "$T/at-s1.raw" "$T/s1.raw"
    expect_fail_within 60 "read-only" "$VDK_IMG" resize -f raw rbd:vdk/snap@s1 32M
    # Listing agrees with qemu-img's and the rbd CLI's.
    "$VDK_IMG" snapshot -l -f raw rbd:vdk/snap | awk 'NR > 2 { print $2 }' >"$T/l-v"
    qimg snapshot -l rbd:vdk/snap | awk 'NR > 2 { print $2 }' >"$T/l-q"
    same_file "$T/l-v" "$T/l-q"
    grep -qx s1 "$T/l-v" || fail "s1 not listed"
    expect_fail_within 60 "already has a snapshot" "$VDK_IMG" snapshot -c s1 -f raw rbd:vdk/snap
    # Apply (roll back) and delete.
    "$VDK_IMG" snapshot -a s1 -f raw rbd:vdk/snap
    rbd_bytes snap "$T/rolled.raw"
    same_file "$T/rolled.raw" "$T/s1.raw"
    "$VDK_IMG" snapshot -d s1 -f raw rbd:vdk/snap
    [ -z "$(rbd snap ls vdk/snap)" ] || fail "s1 not deleted"
    expect_fail_within 60 "no snapshot 's1'" "$VDK_IMG" info rbd:vdk/snap@s1
}

case_resize() {
    qimg create -q -f raw rbd:vdk/rs 16M
    "$VDK_IMG" resize -f raw rbd:vdk/rs 48M >/dev/null
    [ "$(qimg info --output=json -f raw rbd:vdk/rs | jq '."virtual-size"')" = 50331648 ] ||
        fail "grow to 48M"
    "$VDK_IMG" resize -f raw rbd:vdk/rs +16M >/dev/null
    rbd info vdk/rs | grep -q 'size 64 MiB' || fail "grow by 16M"
    expect_fail "shrink" "$VDK_IMG" resize -f raw rbd:vdk/rs 8M
    "$VDK_IMG" resize -f raw --shrink rbd:vdk/rs 8M >/dev/null
    rbd info vdk/rs | grep -q 'size 8 MiB' || fail "shrink to 8M"
}

case_nbd() {
    local sv=$T/v.sock sq=$T/q.sock pv pq
    start_vdk_nbd "$sv" -r -t -f raw rbd:vdk/v-conv
    pv=${NBD_PIDS[-1]}
    start_qemu_nbd "$sq" -r -t -f raw rbd:vdk/v-conv
    pq=${NBD_PIDS[-1]}
    nbdinfo --map "$(uri "$sv")" >"$T/nmap-v"
    nbdinfo --map "$(uri "$sq")" >"$T/nmap-q"
    same_file "$T/nmap-v" "$T/nmap-q"
    nbdinfo --size "$(uri "$sv")" | grep -qx 67108864 || fail "export size"
    nbdcopy "$(uri "$sv")" "$T/nbd-v.raw"
    nbdcopy "$(uri "$sq")" "$T/nbd-q.raw"
    same_file "$T/nbd-v.raw" "$T/nbd-q.raw"
    same_file "$T/nbd-v.raw" "$T/ref.raw"
    stop_nbd "$pv"
    stop_nbd "$pq"
    # A writable export: multi-conn, and fio verify with 4 jobs.
    qimg create -q -f raw rbd:vdk/fio 32M
    start_vdk_nbd "$sv" -t -f raw rbd:vdk/fio
    pv=${NBD_PIDS[-1]}
    nbdinfo --json "$(uri "$sv")" | jq -e '.exports[0].can_multi_conn' >/dev/null ||
        fail "the writable rbd export does not offer multi-conn"
    # The exclusive lock: another writer is refused while vdk-nbd has it.
    expect_fail_within 120 "locked by another client" \
        "$VDK_IMG" resize -f raw rbd:vdk/fio 64M
    bounded 600 fio --name=rbdw --ioengine=nbd --uri="$(uri "$sv")" --rw=randwrite \
        --bsrange=4k-64k --size=8M --offset_increment=8M --numjobs=4 --iodepth=16 \
        --verify=crc32c --verify_fatal=1 --randrepeat=0 --group_reporting \
        --output="$T/fio.out" || { cat "$T/fio.out"; fail "fio write+verify"; }
    grep -q 'err= 0' "$T/fio.out" || { cat "$T/fio.out"; fail "fio reported errors"; }
    nbdcopy "$(uri "$sv")" "$T/fio-nbd.raw"
    stop_nbd "$pv"
    rbd_bytes fio "$T/fio-rbd.raw"
    same_file "$T/fio-nbd.raw" "$T/fio-rbd.raw"
    # Writes through a qemu-nbd export of the same image read back the same
    # through vdk.
    start_qemu_nbd "$sq" -t -f raw rbd:vdk/fio
    pq=${NBD_PIDS[-1]}
    nbdsh_py=$(command -v /usr/bin/python3 || command -v python3)
    "$nbdsh_py" - "$(uri "$sq")" <<'PYEOF' || fail "writing through qemu-nbd"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite(b'\x5a' * 65536, 1 << 20)
h.flush(); h.shutdown()
PYEOF
    stop_nbd "$pq"
    "$VDK_IMG" convert -f raw -O raw rbd:vdk/fio "$T/fio-after.raw"
    cmp -s -n 65536 -i $((1 << 20)):0 "$T/fio-after.raw" <(head -c 65536 /dev/zero | tr '\0' Z) ||
        fail "vdk does not read what qemu-nbd wrote"
}

# The extent of nbdinfo --map that holds OFFSET: "data" or "hole,zero".
map_at() { # URI OFFSET
    nbdinfo --map "$1" | awk -v o="$2" '$1 <= o && o < $1 + $2 { print $4 }'
}

# Block status with fast-diff answers "data" from a short-lived window of
# objects (rbd-status.c): holes are still asked afresh, so data another
# client writes into one shows at once, and the server's own discards
# show as holes at once.
case_status() {
    local s=$T/st.sock p
    nbdsh_py=$(command -v /usr/bin/python3 || command -v python3)
    qimg create -q -f raw rbd:vdk/st 64M
    qemu-io -f raw -c "write -P 0x55 0 8M" rbd:vdk/st >/dev/null
    start_vdk_nbd "$s" -r -t -f raw rbd:vdk/st
    p=${NBD_PIDS[-1]}
    [ "$(map_at "$(uri "$s")" 0)" = data ] || fail "status: no data at 0"
    [ "$(map_at "$(uri "$s")" $((32 << 20)))" = hole,zero ] || fail "status: no hole at 32M"
    # Another client writes into the hole while vdk-nbd serves the image.
    qemu-io -f raw -c "write -P 0x66 32M 4M" rbd:vdk/st >/dev/null
    [ "$(map_at "$(uri "$s")" $((32 << 20)))" = data ] ||
        fail "status: data another client wrote into a hole is not seen"
    nbdcopy "$(uri "$s")" "$T/st-nbd.raw"
    stop_nbd "$p"
    rbd_bytes st "$T/st.raw"
    same_file "$T/st-nbd.raw" "$T/st.raw"
    # A name key overrides vdk's default for a Ceph option.
    "$VDK_IMG" compare -f raw -F raw "rbd:vdk/st:rbd_non_blocking_aio=true" "$T/st.raw" \
        >/dev/null || fail "status: rbd_non_blocking_aio=true from the name"
    # The server's own discard is a hole at once.
    start_vdk_nbd "$s" -t -f raw --discard=unmap rbd:vdk/st
    p=${NBD_PIDS[-1]}
    [ "$(map_at "$(uri "$s")" 0)" = data ] || fail "status: no data at 0 (writable)"
    "$nbdsh_py" - "$(uri "$s")" <<'PYEOF' || fail "trim through vdk-nbd"
import sys, nbd
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.trim(4 << 20, 0)
h.flush(); h.shutdown()
PYEOF
    [ "$(map_at "$(uri "$s")" 0)" = hole,zero ] || fail "status: our own discard is no hole"
    [ "$(map_at "$(uri "$s")" $((4 << 20)))" = data ] || fail "status: data at 4M lost"
    nbdinfo --map "$(uri "$s")" >"$T/st-map-v"
    stop_nbd "$p"
    start_qemu_nbd "$s" -r -t -f raw rbd:vdk/st
    p=${NBD_PIDS[-1]}
    nbdinfo --map "$(uri "$s")" >"$T/st-map-q"
    stop_nbd "$p"
    same_file "$T/st-map-v" "$T/st-map-q"
}

case_chain() {
    # commit into an rbd base: vdk and qemu-img side by side.
    local who
    for who in v q; do
        qimg create -q -f raw "rbd:vdk/base-$who" 16M
        qemu-io -f raw -c "write -P 0x0b 0 8M" "rbd:vdk/base-$who" >/dev/null
        qimg create -q -f qcow2 -b "rbd:vdk/base-$who" -F raw "$T/top-$who.qcow2"
        qemu-io -f qcow2 -c "write -P 0x0c 2M 1M" -c "write -z 5M 1M" "$T/top-$who.qcow2" >/dev/null
    done
    "$VDK_IMG" info "$T/top-v.qcow2" | grep -q 'backing file: rbd:vdk/base-v$' ||
        fail "the rbd backing name was changed"
    "$VDK_IMG" compare "$T/top-v.qcow2" "$T/top-q.qcow2" >/dev/null || fail "chains differ"
    bounded 300 "$VDK_IMG" commit "$T/top-v.qcow2" >/dev/null
    bounded 300 qemu-img commit -q "$T/top-q.qcow2"
    rbd_bytes base-v "$T/base-v.raw"
    rbd_bytes base-q "$T/base-q.raw"
    same_file "$T/base-v.raw" "$T/base-q.raw"
    # rebase: move a top from one rbd base to another, contents kept.
    qimg create -q -f raw rbd:vdk/base-r 16M
    qemu-io -f raw -c "write -P 0x0d 4M 4M" rbd:vdk/base-r >/dev/null
    qimg create -q -f qcow2 -b rbd:vdk/base-v -F raw "$T/top-r.qcow2"
    qemu-io -f qcow2 -c "write -P 0x0e 0 1M" "$T/top-r.qcow2" >/dev/null
    qimg convert -O raw "$T/top-r.qcow2" "$T/before.raw"
    bounded 300 "$VDK_IMG" rebase -b rbd:vdk/base-r -F raw "$T/top-r.qcow2"
    qimg info "$T/top-r.qcow2" | grep -q 'backing file: rbd:vdk/base-r' || fail "rebase name"
    qimg convert -O raw "$T/top-r.qcow2" "$T/after.raw"
    same_file "$T/before.raw" "$T/after.raw"
}

case_boot() {
    local guest_elf=$VDK_BUILD/tests/guest/vdk-guest.elf
    [ -x "$VDK_BOOT" ] && [ -f "$guest_elf" ] || { echo "  (no vdk-boot or test guest: skipped)"; return 0; }
    if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ] ||
       ! timeout 120 "$VDK_BOOT" --kernel "$guest_elf" --append vdkguest.action=poweroff \
            --quiet --timeout 100 >/dev/null 2>&1; then
        echo "  (no usable /dev/kvm: the boot case is skipped)"
        return 0
    fi
    qimg create -q -f raw rbd:vdk/guest 8M
    qemu-io -f raw -c "write -P 0x5a 0 64k" -c "write -P 0x77 3M 64k" rbd:vdk/guest >/dev/null
    local rc=0
    timeout 400 "$VDK_BOOT" --kernel "$guest_elf" --disk "rbd:vdk/guest,format=raw" \
        --timeout 300 --append vdkguest.disks=1 >"$T/boot.out" 2>"$T/boot.err" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$T/boot.out" "$T/boot.err" >&2; fail "vdk-boot on rbd: exit $rc"; }
    grep -q 'VDK-GUEST-PASS' "$T/boot.out" || fail "the guest did not pass on an rbd disk"
    local out
    out=$(qemu-io -f raw -c "read -P 0x5a 0 64k" -c "read -P 0xc3 1M 64k" \
          -c "read -P 0 3M 64k" rbd:vdk/guest 2>&1) || fail "qemu-io: $out"
    case $out in *"verification failed"*) fail "the guest's writes are not in the rbd image";; esac
}

case_errors() {
    expect_fail_within 60 "pool 'nopool' does not exist" "$VDK_IMG" info rbd:nopool/x
    expect_fail_within 60 "image 'nothere' does not exist" "$VDK_IMG" info rbd:vdk/nothere
    expect_fail_within 60 "no snapshot 'nosnap'" "$VDK_IMG" info rbd:vdk/v-conv@nosnap
    expect_fail_within 60 "no pool name" "$VDK_IMG" info rbd:vdk
    expect_fail_within 60 "has no value" "$VDK_IMG" info rbd:vdk/x:conf
    expect_fail_within 60 "unknown Ceph option 'no_such_option'" \
        "$VDK_IMG" info "rbd:vdk/v-conv:no_such_option=1"
    expect_fail_within 60 "cannot read the Ceph configuration" \
        "$VDK_IMG" info "rbd:vdk/v-conv:conf=$T/none.conf"
    expect_fail_within 60 "already exists" "$VDK_IMG" create -f raw rbd:vdk/v-conv 1M
    expect_fail_within 60 "snapshot 'x' is read-only|read-only" \
        "$VDK_IMG" convert -n -f raw -O raw "$T/ref.raw" rbd:vdk/v-conv@x
    # A cluster that does not answer: bounded by connect-timeout.
    expect_fail_within 60 "no answer from the Ceph monitors within 3 s" \
        "$VDK_IMG" info "rbd:vdk/v-conv:conf=/dev/null:mon_host=127.0.0.1\\:1:connect-timeout=3"
    expect_fail_within 60 "no Ceph monitors" \
        "$VDK_IMG" info --image-opts driver=rbd,pool=vdk,image=v-conv,conf=/dev/null
    # Refused authentication: this cluster speaks no cephx.
    expect_fail_within 60 "refused authentication" \
        "$VDK_IMG" info "rbd:vdk/v-conv:auth_client_required=cephx:keyring=/dev/null:connect-timeout=10"
    expect_fail_within 60 "connect-timeout" \
        "$VDK_IMG" info --image-opts driver=rbd,pool=vdk,image=v-conv,connect-timeout=x
    # Nothing was written by the refused opens.
    rbd_bytes v-conv "$T/v-after.raw"
    same_file "$T/v-after.raw" "$T/ref.raw"
}

# The OSD stops answering for a while (SIGSTOP): within op-timeout the
# request is retried and the data is right; past it, a clear error.  Then
# the OSD is killed during I/O.  Last, since the cluster does not recover.
case_osd() {
    local osd
    osd=$(ceph_daemon_pid osd.0)
    head -c 32M /dev/urandom >"$T/osd.raw"
    qimg create -q -f raw rbd:vdk/osd 32M
    # A short stall: the convert waits it out and the bytes are right.
    "$VDK_IMG" convert -n -f raw -O raw "$T/osd.raw" "rbd:vdk/osd:op-timeout=60" &
    local cv=$! rc=0
    sleep 0.5
    kill -STOP "$osd"
    sleep 4
    kill -CONT "$osd"
    wait_bounded 120 "$cv" || rc=$?
    [ "$rc" -eq 0 ] || fail "convert through a 4 s OSD stall failed (exit $rc)"
    rbd_bytes osd "$T/osd-back.raw"
    same_file "$T/osd-back.raw" "$T/osd.raw"
    # A long stall: a clear error once op-timeout passes, never a hang.
    kill -STOP "$osd"
    expect_fail_within 90 "timed out|Connection timed out" \
        "$VDK_IMG" convert -f raw -O raw "rbd:vdk/osd:op-timeout=5" "$T/osd-stalled.raw"
    kill -CONT "$osd"
    # Killed during a read: an error, and no copy that claims success.
    # (A bigger image, so that the kill lands while data is moving.)
    head -c 96M /dev/urandom >"$T/osd-big.raw"
    "$VDK_IMG" resize -q -f raw rbd:vdk/osd 96M
    "$VDK_IMG" convert -n -f raw -O raw "$T/osd-big.raw" rbd:vdk/osd
    cp "$T/osd-big.raw" "$T/osd.raw"
    "$VDK_IMG" convert -f raw -O raw "rbd:vdk/osd:op-timeout=5" "$T/osd-killed.raw" \
        >"$T/kill.out" 2>"$T/kill.err" &
    cv=$!
    sleep 0.7
    kill -KILL "$osd"
    rc=0
    wait_bounded 120 "$cv" || rc=$?
    if [ "$rc" -eq 0 ]; then
        # It finished before the kill: then the copy must be exact.
        same_file "$T/osd-killed.raw" "$T/osd.raw"
        echo "  (the copy finished before the OSD died; it is exact)"
    else
        [ "$rc" -lt 128 ] || fail "convert crashed when the OSD died"
        cat "$T/kill.err"
        grep -qE 'timed out|Input/output error|Connection' "$T/kill.err" ||
            fail "no clear error when the OSD died"
    fi
}

# Sequential reads already received together are merged into one read
# of the image (nbd-server/merge.c, for storage like rbd where each
# request costs an OSD operation): the replies must be exactly those of
# separate reads, with and without structured replies and DF, across
# data, zeros and holes; a fault inside a merged range fails only the
# request that holds it.
case_merge() {
    local s=$T/m.sock f=$T/f.sock pm pf
    start_vdk_nbd "$s" -v -r -t -f raw rbd:vdk/v-conv
    pm=${NBD_PIDS[-1]}
    # The same image with a fault at 3 MiB + 5 KiB.
    "$VDK_NBD" -k "$f" -r -t --image-opts "driver=fault,ops=read,errno=EIO,offset=$(((3 << 20) + 5120)),length=1,file.driver=raw,file.file.driver=rbd,file.file.pool=vdk,file.file.image=v-conv" >"$T/fault-nbd.log" 2>&1 &
    NBD_PIDS+=($!)
    pf=$!
    wait_socket "$f" "$pf"
    /usr/bin/python3 - "$(uri "$s")" "$(uri "$f")" "$T/v.raw" <<'PYEOF' || fail "merged reads"
import sys, errno, nbd
uri, furi, ref = sys.argv[1:]
data = open(ref, "rb").read()

def run(h, reads, df=False):
    """Pipeline the reads [(off, size)]; returns [(errno name or None, bytes)]."""
    cmds = []
    for off, size in reads:
        b = nbd.Buffer(size)
        if df:  # this libnbd takes DF only on structured reads
            c = h.aio_pread_structured(b, off, lambda *a: 0, flags=nbd.CMD_FLAG_DF)
        else:
            c = h.aio_pread(b, off)
        cmds.append((c, b))
    done = {}
    while len(done) < len(cmds):
        c = h.aio_peek_command_completed()
        if c == 0:
            h.poll(-1)
            continue
        try:
            h.aio_command_completed(c)
            done[c] = None
        except nbd.Error as e:  # errno is a name in some libnbd versions
            done[c] = e.errno if isinstance(e.errno, str) else errno.errorcode.get(e.errno)
    return [(done[c], b.to_bytearray()) for c, b in cmds]

# 16 pipelined reads from several starts, across data, zeros and holes.
for structured in (True, False):
    for df in ((False, True) if structured else (False,)):
        h = nbd.NBD()
        h.set_request_structured_replies(structured)
        h.connect_uri(uri)
        for start in (0, 7 << 20, 20 << 20, 39 << 20, 60 << 20):
            for size in (256 << 10, 64 << 10, (1 << 20) + 4096):
                reads = [(start + i * size, size) for i in range(16)
                         if start + (i + 1) * size <= len(data)]
                for (off, n), (err, got) in zip(reads, run(h, reads, df)):
                    if err or got != data[off:off + n]:
                        sys.exit("read %d+%d (structured %s, DF %s): %s" %
                                 (off, n, structured, df, err or "data differs"))
        h.shutdown()

# The fault: of 16 pipelined 256 KiB reads from 2 MiB, only the one
# holding it (index 4) fails, with EIO; the others read the image.
h = nbd.NBD()
h.connect_uri(furi)
reads = [((2 << 20) + i * (256 << 10), 256 << 10) for i in range(16)]
for i, ((off, n), (err, got)) in enumerate(zip(reads, run(h, reads))):
    if (err is not None) != (i == 4) or (err and err != "EIO"):
        sys.exit("fault: request %d: %s" % (i, err or "succeeded"))
    if not err and got != data[off:off + n]:
        sys.exit("fault: request %d: data differs" % i)
h.shutdown()
PYEOF
    grep -q "reads merged into one" "$T/vdk-nbd.log" ||
        { cat "$T/vdk-nbd.log" >&2; fail "no reads were merged"; }
    stop_nbd "$pm"
    stop_nbd "$pf"
}

cases=${VDK_RBD_CASES:-convert map info snapshot resize nbd merge status chain boot errors osd}
for c in $cases; do
    echo "== $c"
    t0=$(date +%s)
    "case_$c"
    echo "   ($c: $(($(date +%s) - t0)) s)"
done
echo "all rbd cases passed (cluster start-up ${CEPH_START_SECONDS} s)"
