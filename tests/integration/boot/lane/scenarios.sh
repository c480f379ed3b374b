# SPDX-License-Identifier: MIT
# The scenarios of the real-kernel lane, one pair of functions each.
#
#   scenario_NAME   runs on the host before the boots: makes its images in
#                   $W/img (qemu-img/qemu-io, the 0x5a pattern at 0 that
#                   l2-init checks) and queues one or more vdk-boot runs with
#                   lane_run NAME 'ENV=V ...' ARGS... (paths relative to $W:
#                   boot/vmlinuz, boot/initrd, img/...).
#   check_NAME      runs on the host after: $R/out/NAME.rc, .console (the
#                   guest's console), .err (vdk-boot's stderr), .stdout and
#                   the images in $R/img as the guests left them.
#
# All runs go into one run-all.sh that one L1 boot (or the host itself,
# where it has vmx/svm) executes in a row, so L1 starts once per build.
# Fewer, fuller L2 boots are cheaper than many small ones: a scenario that
# only needs "a disk that ..." should add its disk to `disks`.  To add a
# scenario (the image-boot layouts, say): write scenario_X and check_X
# here, add X to LANE_SCENARIOS; anything a run needs must be under $W.
LANE_SCENARIOS="disks expect panic timeout longcmd"

L2_APPEND="console=ttyS0 loglevel=4 mitigations=off"
L2_MEM=256M

# lane_img FILE FMT [qemu-img create options...]: 16 MiB, 0x5a at [0, 64k).
lane_img() {
    local f=$W/img/$1 fmt=$2
    shift 2
    qemu-img create -q -f "$fmt" "$@" "$f" 16M || fail "qemu-img create $f"
    qemu-io -f "$fmt" -c "write -P 0x5a 0 64k" "$f" >/dev/null || fail "qemu-io write $f"
}

# The guest's write (0xc3 over [1 MiB, +64 KiB)) and the host's pattern.
lane_check_written() {
    local out
    out=$(qemu-io "$@" -c "read -P 0x5a 0 64k" -c "read -P 0xc3 1M 64k" 2>&1) ||
        fail "qemu-io $*: $out"
    case $out in *"verification failed"*) fail "guest write missing ($*): $out" ;; esac
}

lane_expect_rc() {
    local rc
    rc=$(cat "$R/out/$1.rc" 2>/dev/null) || fail "scenario $1 did not run"
    [ "$rc" = "$2" ] || { lane_show "$1"; fail "scenario $1: vdk-boot exit $rc, wanted $2"; }
}

lane_show() {
    echo "--- $1: console (last lines)" >&2
    tail -n 30 "$R/out/$1.console" >&2 2>/dev/null
    echo "--- $1: vdk-boot stderr" >&2
    cat "$R/out/$1.err" >&2 2>/dev/null
}

lane_console_has() {
    grep -qE -- "$2" "$R/out/$1.console" 2>/dev/null ||
        { lane_show "$1"; fail "scenario $1: the console lacks /$2/"; }
}

# The PVH entry (the ELF vmlinux), 2 vCPUs, six disks in one boot: qcow2,
# a qcow2 overlay on a backing file, snapshot=on, readonly=on, LUKS, VHD;
# a command line just under the kernel's 2 KiB limit; clean power-off.
scenario_disks() {
    lane_img q.qcow2 qcow2
    lane_img base.qcow2 qcow2
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$W/img/top.qcow2" || fail "overlay"
    lane_img snap.qcow2 qcow2
    lane_img ro.raw raw
    qemu-img create -q -f luks --object secret,id=s0,data=lanepass \
        -o key-secret=s0,iter-time=10 "$W/img/l.luks" 16M || fail "luks create"
    qemu-io --object secret,id=s0,data=lanepass \
        --image-opts "driver=luks,key-secret=s0,file.filename=$W/img/l.luks" \
        -c "write -P 0x5a 0 64k" >/dev/null || fail "luks write"
    lane_img v.vhd vpc
    for f in base.qcow2 snap.qcow2 ro.raw; do cp "$W/img/$f" "$W/img/$f.orig"; done
    # vdk-boot appends a virtio_mmio.device= word per disk (about 40
    # bytes each): our own part stays under 1,800 bytes.
    local pad
    pad=$(head -c 1650 /dev/zero | tr '\0' x)
    lane_run disks "VDK_SECRET=lanepass" "\$VDK_BOOT" --kernel boot/vmlinux \
        --initrd boot/initrd --mem $L2_MEM --cpus 2 --timeout 900 \
        --append "$L2_APPEND vdklane.cpus=2 vdklane.disks=6 vdklane.pad=$pad vdklane.tail=END-OF-LINE" \
        --disk img/q.qcow2,format=qcow2,serial=rw-qcow2 \
        --disk img/top.qcow2,format=qcow2,serial=rw-overlay \
        --disk img/snap.qcow2,format=qcow2,snapshot=on,serial=rw-snapshot \
        --disk img/ro.raw,format=raw,readonly=on,serial=ro-raw \
        --disk img/l.luks,format=luks,serial=rw-luks \
        --disk img/v.vhd,format=vpc,serial=rw-vhd
}

check_disks() {
    local s i
    lane_expect_rc disks 0
    grep -q 'powered off' "$R/out/disks.err" || fail "disks: not a clean power-off: $(cat "$R/out/disks.err")"
    lane_console_has disks 'VDK-LANE: 2 CPUs'
    lane_console_has disks 'command line of [0-9]+ bytes ends with END-OF-LINE'
    for s in rw-qcow2 rw-overlay rw-snapshot rw-luks rw-vhd; do
        lane_console_has disks "disk vd[a-h] $s read-write, wrote and read back"
    done
    lane_console_has disks 'disk vd[a-h] ro-raw read-only, write refused'
    lane_console_has disks '^VDK-LANE-MARKER'
    i=$R/img
    lane_check_written -f qcow2 "$i/q.qcow2"
    qemu-img check -q "$i/q.qcow2" || fail "q.qcow2 corrupt after the run"
    lane_check_written -f qcow2 "$i/top.qcow2"
    qemu-img check -q "$i/top.qcow2" || fail "top.qcow2 corrupt after the run"
    cmp -s "$i/base.qcow2" "$i/base.qcow2.orig" || fail "the overlay's backing file changed"
    cmp -s "$i/snap.qcow2" "$i/snap.qcow2.orig" || fail "snapshot=on: the image changed"
    cmp -s "$i/ro.raw" "$i/ro.raw.orig" || fail "readonly=on: the image changed"
    lane_check_written --object secret,id=s0,data=lanepass \
        --image-opts "driver=luks,key-secret=s0,file.filename=$i/l.luks"
    lane_check_written -f vpc "$i/v.vhd"
}

# The bzImage entry, 1 vCPU: --expect matches a line the initramfs prints
# on /dev/console
# (the lost-console bug made this exit 6), before its power-off.
scenario_expect() {
    lane_img e.raw raw
    lane_run expect "" "\$VDK_BOOT" --kernel boot/vmlinuz --initrd boot/initrd \
        --mem $L2_MEM --cpus 1 --timeout 900 --expect '^VDK-LANE-MARKER' \
        --append "$L2_APPEND vdklane.cpus=1 vdklane.disks=1" \
        --disk img/e.raw,format=raw,serial=rw-raw
}

check_expect() {
    lane_expect_rc expect 0
    grep -q 'expected output seen' "$R/out/expect.err" || fail "expect: $(cat "$R/out/expect.err")"
    lane_console_has expect 'VDK-LANE: 1 CPUs'
    lane_check_written -f raw "$R/img/e.raw"
}

# panic=-1: the kernel reboots at once; the panic on the console decides.
scenario_panic() {
    lane_run panic "" "\$VDK_BOOT" --kernel boot/vmlinuz --initrd boot/initrd \
        --mem $L2_MEM --timeout 900 --append "$L2_APPEND panic=-1 vdklane.end=panic"
}

check_panic() {
    lane_expect_rc panic 3
    grep -q 'guest kernel panic: .*sysrq' "$R/out/panic.err" || fail "panic: $(cat "$R/out/panic.err")"
}

# --timeout ends a boot that is still going (a few seconds into it).
scenario_timeout() {
    lane_run timeout "" "\$VDK_BOOT" --kernel boot/vmlinuz --initrd boot/initrd \
        --mem $L2_MEM --timeout 4 --append "$L2_APPEND vdklane.end=hang"
}

check_timeout() {
    lane_expect_rc timeout 2
    grep -q 'timed out after 4 seconds' "$R/out/timeout.err" || fail "timeout: $(cat "$R/out/timeout.err")"
}

# Over 2 KiB: more than this kernel takes (its setup header says 2047
# bytes); a clear setup error, no boot.
scenario_longcmd() {
    local pad
    pad=$(head -c 2600 /dev/zero | tr '\0' y)
    lane_run longcmd "" "\$VDK_BOOT" --kernel boot/vmlinuz --initrd boot/initrd \
        --mem $L2_MEM --timeout 900 --append "$L2_APPEND vdklane.pad=$pad"
}

check_longcmd() {
    lane_expect_rc longcmd 1
    grep -q 'kernel command line is [0-9]* bytes, the kernel accepts at most 2047' \
        "$R/out/longcmd.err" || fail "longcmd: $(cat "$R/out/longcmd.err")"
}
