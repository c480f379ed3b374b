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
#                   the images in $R/img as the guests left them.  Copies
#                   to compare with stay in $T/orig (not in L1's archives).
#
# All runs go into one run-all.sh that one L1 boot (or the host itself,
# where it has vmx/svm) executes in a row, so L1 starts once per build.
# Fewer, fuller L2 boots are cheaper than many small ones: a scenario that
# only needs "a disk that ..." should add its disk to `disks`.  To add a
# scenario (the image-boot layouts, say): write scenario_X and check_X
# here, add X to LANE_SCENARIOS; anything a run needs must be under $W.
LANE_SCENARIOS="disks img_gpt img_mbr img_esp panic timeout longcmd"

# cryptomgr.notests: the crypto self-tests were the largest initcall of an
# L2 boot under nested TCG (about a quarter of the initcalls' time,
# initcall_debug), and test nothing of vdk's.
L2_APPEND="console=ttyS0 loglevel=4 mitigations=off cryptomgr.notests"
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
    tr -d '\r' 2>/dev/null <"$R/out/$1.console" | grep -qE -- "$2" ||
        { lane_show "$1"; fail "scenario $1: the console lacks /$2/"; }
}

# The PVH entry (the ELF vmlinux), 2 vCPUs, seven disks in one boot: qcow2,
# a qcow2 overlay on a backing file, snapshot=on, readonly=on, LUKS, VHD,
# and a raw disk behind the fault filter (a read fault over [4 MiB, +4 KiB):
# the guest's read there fails with an I/O error in its dmesg, the rest
# reads); a command line just under the kernel's 2 KiB limit; clean
# power-off.
scenario_disks() {
    lane_img q.qcow2 qcow2
    lane_img base.qcow2 qcow2
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$W/img/top.qcow2" || fail "overlay"
    lane_img snap.qcow2 qcow2
    lane_img ro.raw raw
    retry_setup --if "$LOAD_FLAKES" qemu-img create -q -f luks --object secret,id=s0,data=lanepass \
        -o key-secret=s0,iter-time=10 "$W/img/l.luks" 16M || fail "luks create"
    qemu-io --object secret,id=s0,data=lanepass \
        --image-opts "driver=luks,key-secret=s0,file.filename=$W/img/l.luks" \
        -c "write -P 0x5a 0 64k" >/dev/null || fail "luks write"
    lane_img v.vhd vpc
    lane_img f.raw raw
    mkdir -p "$T/orig"
    for f in base.qcow2 snap.qcow2 ro.raw f.raw; do cp "$W/img/$f" "$T/orig/$f"; done
    # vdk-boot appends a virtio_mmio.device= word per disk (about 40
    # bytes each): our own part stays under 1,750 bytes.
    local pad
    pad=$(head -c 1600 /dev/zero | tr '\0' x)
    lane_run disks "VDK_SECRET=lanepass" "\$VDK_BOOT" --kernel boot/vmlinux \
        --initrd boot/initrd --mem $L2_MEM --cpus 2 --timeout 900 \
        --append "$L2_APPEND vdklane.cpus=2 vdklane.disks=7 vdklane.pad=$pad vdklane.tail=END-OF-LINE" \
        --disk img/q.qcow2,format=qcow2,serial=rw-qcow2 \
        --disk img/top.qcow2,format=qcow2,serial=rw-overlay \
        --disk img/snap.qcow2,format=qcow2,snapshot=on,serial=rw-snapshot \
        --disk img/ro.raw,format=raw,readonly=on,serial=ro-raw \
        --disk img/l.luks,format=luks,serial=rw-luks \
        --disk img/v.vhd,format=vpc,serial=rw-vhd \
        --disk "driver=fault,ops=read,offset=4M,length=4k,file.driver=raw,file.filename=img/f.raw,serial=flt-8192-8"
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
    # Issue 18's boot check: the guest's read of the faulted range fails
    # with EIO and the kernel logs the I/O error at that sector.
    lane_console_has disks 'disk (vd[a-h]) flt-8192-8 read fault at sector 8192: .*Input/output error; dmesg: I/O error, dev vd[a-h], sector 8192 op 0x0:\(READ\)'
    lane_console_has disks '^VDK-LANE-MARKER'
    i=$R/img
    lane_check_written -f qcow2 "$i/q.qcow2"
    qemu-img check -q "$i/q.qcow2" || fail "q.qcow2 corrupt after the run"
    lane_check_written -f qcow2 "$i/top.qcow2"
    qemu-img check -q "$i/top.qcow2" || fail "top.qcow2 corrupt after the run"
    cmp -s "$i/base.qcow2" "$T/orig/base.qcow2" || fail "the overlay's backing file changed"
    cmp -s "$i/snap.qcow2" "$T/orig/snap.qcow2" || fail "snapshot=on: the image changed"
    cmp -s "$i/ro.raw" "$T/orig/ro.raw" || fail "readonly=on: the image changed"
    cmp -s "$i/f.raw" "$T/orig/f.raw" || fail "the faulted disk changed"
    lane_check_written --object secret,id=s0,data=lanepass \
        --image-opts "driver=luks,key-secret=s0,file.filename=$i/l.luks"
    lane_check_written -f vpc "$i/v.vhd"
}

# The kernel from the image (no --kernel): the stock bzImage and the
# initramfs put into the image by mk_boot_disk (image-lib.sh, as
# boot-image-boot does with the test guest), 1 vCPU, --expect on the
# marker the initramfs prints on /dev/console (the lost-console bug made
# these exit 6).  The image disk's serial is boot-*: l2-init lists its
# partitions and writes nothing.
#   img_gpt   GPT, ext4, a BLS entry whose options carry vdklane.boot (the
#             options came from the entry); qcow2, readonly=on; a second,
#             raw disk that the guest writes
#   img_mbr   MBR, ext4, Debian's /vmlinuz and /initrd.img symlinks: the
#             options are root=PARTUUID= of the partition + --append; raw,
#             snapshot=on
#   img_esp   GPT with a FAT32 ESP (systemd-boot's /loader/entries and the
#             kernel in /EFI/Linux) and an ext4 root; qcow2, snapshot=on
# The images travel as qcow2 where they can (the tar archives carry no
# holes; their copies for the check stay on the host) and must be
# unchanged afterwards.
lane_boot_img() { # LAYOUT NAME FMT ENTRY_OPTIONS
    local raw=$T/$2.raw
    mk_boot_disk "$1" "$raw" "$W/boot/vmlinuz" "$W/boot/initrd" "$4"
    if [ "$3" = raw ]; then
        mv "$raw" "$W/img/$2.raw"
    else
        qemu-img convert -q -f raw -O "$3" "$raw" "$W/img/$2.$3" || fail "qemu-img convert $2"
        rm -f "$raw"
    fi
    mkdir -p "$T/orig"
    cp "$W/img/$2.$3" "$T/orig/$2.$3"
}

lane_img_unchanged() {
    cmp -s "$R/img/$1" "$T/orig/$1" || fail "${1%%.*}: the boot image changed"
}

scenario_img_gpt() {
    lane_boot_img gpt-ext4-bls gpt qcow2 "$L2_APPEND vdklane.cpus=1 vdklane.disks=2 vdklane.boot=gpt-ext4-bls"
    lane_img e.raw raw
    lane_run img_gpt "" "\$VDK_BOOT" --mem $L2_MEM --cpus 1 --timeout 900 \
        --expect '^VDK-LANE-MARKER' \
        --disk img/gpt.qcow2,format=qcow2,readonly=on,serial=boot-gpt \
        --disk img/e.raw,format=raw,serial=rw-raw
}

check_img_gpt() {
    lane_expect_rc img_gpt 0
    grep -q 'expected output seen' "$R/out/img_gpt.err" || fail "img_gpt: $(cat "$R/out/img_gpt.err")"
    lane_console_has img_gpt 'VDK-LANE: 1 CPUs'
    lane_console_has img_gpt 'VDK-LANE: booted from gpt-ext4-bls$'
    lane_console_has img_gpt 'VDK-LANE: disk vda boot-gpt holds vda1 ext4$'
    lane_console_has img_gpt 'disk vdb rw-raw read-write, wrote and read back'
    lane_img_unchanged gpt.qcow2
    lane_check_written -f raw "$R/img/e.raw"
}

scenario_img_mbr() {
    lane_boot_img mbr-ext4-links mbr raw ""
    lane_run img_mbr "" "\$VDK_BOOT" --mem $L2_MEM --timeout 900 \
        --expect '^VDK-LANE-MARKER' \
        --append "$L2_APPEND vdklane.cpus=1 vdklane.disks=1 vdklane.boot=mbr-ext4-links" \
        --disk img/mbr.raw,format=raw,snapshot=on,serial=boot-mbr
}

check_img_mbr() {
    local id
    lane_expect_rc img_mbr 0
    id=$(sfdisk --disk-id "$R/img/mbr.raw") || fail "sfdisk --disk-id"
    lane_console_has img_mbr "VDK-LANE: booted from mbr-ext4-links, root=PARTUUID=${id#0x}-01\$"
    lane_console_has img_mbr 'VDK-LANE: disk vda boot-mbr holds vda1 ext4$'
    lane_img_unchanged mbr.raw
}

scenario_img_esp() {
    lane_boot_img esp-bls esp qcow2 "$L2_APPEND vdklane.cpus=1 vdklane.disks=1 vdklane.boot=esp-bls"
    lane_run img_esp "" "\$VDK_BOOT" --mem $L2_MEM --timeout 900 \
        --expect '^VDK-LANE-MARKER' \
        --disk img/esp.qcow2,format=qcow2,snapshot=on,serial=boot-esp
}

check_img_esp() {
    lane_expect_rc img_esp 0
    lane_console_has img_esp 'VDK-LANE: booted from esp-bls$'
    lane_console_has img_esp 'VDK-LANE: disk vda boot-esp holds vda1 vfat vda2 ext4$'
    lane_img_unchanged esp.qcow2
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
