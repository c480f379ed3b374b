# SPDX-License-Identifier: MIT
# Disks that hold their own kernel, for vdk-boot without --kernel.  Source
# after tests/integration/lib.sh.  Real tools only (sfdisk, mkfs.ext4 -d,
# mkfs.vfat + mtools, e2fsck -D); no root, no mount.
#
#   mk_boot_disk LAYOUT OUT KERNEL INITRD [OPTIONS]
#       A raw disk image OUT whose boot files are KERNEL and INITRD
#       (INITRD may be "" for none), with OPTIONS as the entry's kernel
#       options where the layout has an entry.  LAYOUT is one of
#         gpt-ext4-bls    GPT, one ext4 partition, /boot/loader/entries
#         gpt-ext4-links  GPT, ext4 root with Debian's /vmlinuz and
#                         /initrd.img symlinks into /boot (options:
#                         root=PARTUUID= synthesised, OPTIONS unused)
#         gpt-ext4-grub   GPT, ext4 with /boot/grub/grub.cfg
#         mbr-ext4-links  MBR, ext4 root with the symlinks
#         mbr-ext4-bls    MBR, extended partition, ext4 in a logical one
#         esp-bls         GPT, a FAT32 ESP with /loader/entries and the
#                         kernel (systemd-boot's layout) + an ext4 root
#         ext2-links      GPT, ext2 (1 KiB blocks: indirect blocks)
#         ext3-links      GPT, ext3 (journal, indirect blocks)
#       The booting lane calls it the same way for every layout:
#         . tests/integration/lib.sh; . tests/integration/boot/image-lib.sh
#         mk_boot_disk esp-bls "$T/disk.img" "$vmlinuz" "$T/initrd.gz" \
#             "console=ttyS0 panic=-1"
#         vdk-boot --disk "$T/disk.img" --expect MARKER ...
#       Smaller disks (fuzz seeds): EXT4_SLACK_KB (default 8192) and
#       MKFS_EXT4_OPTS for the ext4, ESP_SLACK_MB (40) and ESP_VFAT_OPTS
#       ("-F 32") for the ESP.
#   debian_kernel           sets $DEB_VMLINUZ: the Debian linux-image
#                           package's kernel, downloaded (retried) and
#                           unpacked once into the build tree
#   mk_initramfs OUT        a small busybox-static initramfs (gzip cpio)

# mk_part_disk OUT LABEL "TYPE FILE" ...: a disk with one partition per
# filesystem image FILE (dd'ed in at 1 MiB steps), made with sfdisk.
mk_part_disk() {
    local out=$1 label=$2; shift 2
    local start=2048 script="label: $label" spec sizes=() files=() total
    for spec in "$@"; do
        local type=${spec%% *} file=${spec#* }
        local sec=$(( ($(stat -c %s "$file") + 1048575) / 1048576 * 2048 ))
        script="$script
start=$start, size=$sec, type=$type"
        files+=("$file:$start")
        start=$((start + sec))
    done
    total=$(( (start + 2048 + 33) * 512 ))
    rm -f "$out"
    truncate -s "$total" "$out"
    echo "$script" | sfdisk -q "$out" >/dev/null || fail "sfdisk failed on $out"
    for spec in "${files[@]}"; do
        dd if="${spec%:*}" of="$out" bs=512 seek="${spec##*:}" conv=notrunc \
           status=none || fail "dd into $out failed"
    done
}

# mk_ext4 OUT DIR [mkfs options...]: an ext4 image sized for DIR.
mk_ext4() {
    local out=$1 dir=$2; shift 2
    local kb=$(( $(du -sk "$dir" | cut -f1) * 13 / 10 + ${EXT4_SLACK_KB:-8192} ))
    rm -f "$out"
    mkfs.ext4 -q -F -d "$dir" ${MKFS_EXT4_OPTS:-} "$@" "$out" "${kb}k" >/dev/null 2>&1 ||
        fail "mkfs.ext4 -d $dir failed"
}

# mk_vfat OUT SIZE_MB DIR: a FAT image (mkfs.vfat picks 12/16/32 unless
# VFAT_OPTS says) holding DIR's tree, copied with mtools.
mk_vfat() {
    local out=$1 mb=$2 dir=$3
    rm -f "$out"
    mkfs.vfat ${VFAT_OPTS:-} -C "$out" $((mb * 1024)) >/dev/null || fail "mkfs.vfat failed"
    (cd "$dir" && find . -mindepth 1 -type d | sort | while read -r d; do
        MTOOLS_SKIP_CHECK=1 mmd -i "$out" "::/${d#./}" || exit 1
    done) || fail "mmd failed"
    (cd "$dir" && find . -type f | sort | while read -r f; do
        MTOOLS_SKIP_CHECK=1 mcopy -i "$out" "$f" "::/${f#./}" || exit 1
    done) || fail "mcopy failed"
}

bls_entry() { # FILE TITLE VERSION KERNEL INITRD OPTIONS
    {
        echo "title $2"
        echo "version $3"
        echo "linux $4"
        [ -z "$5" ] || echo "initrd $5"
        echo "options $6"
    } >"$1"
}

mk_boot_disk() {
    local layout=$1 out=$2 kernel=$3 initrd=$4 opts=${5:-console=ttyS0}
    local w=$out.d v=6.1.0-test
    rm -rf "$w"
    mkdir -p "$w/root/boot" "$w/esp"
    cp "$kernel" "$w/root/boot/vmlinuz-$v"
    local ird=
    if [ -n "$initrd" ]; then
        cp "$initrd" "$w/root/boot/initrd.img-$v"
        ird=/boot/initrd.img-$v
    fi
    case $layout in
    *-links)
        ln -s "boot/vmlinuz-$v" "$w/root/vmlinuz"
        [ -z "$initrd" ] || ln -s "boot/initrd.img-$v" "$w/root/initrd.img" ;;
    gpt-ext4-bls|mbr-ext4-bls)
        mkdir -p "$w/root/boot/loader/entries"
        bls_entry "$w/root/boot/loader/entries/test-$v.conf" "Test $v" "$v" \
            "/boot/vmlinuz-$v" "$ird" "$opts" ;;
    gpt-ext4-grub)
        mkdir -p "$w/root/boot/grub"
        cat >"$w/root/boot/grub/grub.cfg" <<CFG
set default="0"
set timeout=5
function load_video {
  insmod all_video
}
menuentry 'Test $v' --class debian \$menuentry_id_option 'gnulinux-simple' {
	load_video
	insmod ext2
	linux	/boot/vmlinuz-$v $opts
	initrd	$ird
}
CFG
        ;;
    esp-bls)
        mkdir -p "$w/esp/loader/entries" "$w/esp/EFI/Linux"
        cp "$kernel" "$w/esp/EFI/Linux/vmlinuz-$v"
        local eird=
        if [ -n "$initrd" ]; then
            cp "$initrd" "$w/esp/EFI/Linux/initrd-$v.img"
            eird=/EFI/Linux/initrd-$v.img
        fi
        bls_entry "$w/esp/loader/entries/linux-$v.conf" "ESP $v" "$v" \
            "/EFI/Linux/vmlinuz-$v" "$eird" "$opts"
        echo "timeout 3" >"$w/esp/loader/loader.conf"
        rm -f "$w/root/boot/vmlinuz-$v" "$w/root/boot/initrd.img-$v" ;;
    *) fail "mk_boot_disk: unknown layout $layout" ;;
    esac
    case $layout in
    ext[23]-*) rm -f "$w/fs"
            mkfs.${layout%%-*} -q -F -b 1024 -d "$w/root" "$w/fs" \
                "$(( $(du -sk "$w/root" | cut -f1) * 13 / 10 + 4096 ))k" >/dev/null 2>&1 ||
                fail "mkfs.ext2 failed" ;;
    *) mk_ext4 "$w/fs" "$w/root" ;;
    esac
    case $layout in
    gpt-*|ext[23]-*) mk_part_disk "$out" gpt "L $w/fs" ;;
    mbr-ext4-links) mk_part_disk "$out" dos "83 $w/fs" ;;
    mbr-ext4-bls)
        # A logical partition: an extended one from 1 MiB, the ext4 inside.
        local sec=$(( ($(stat -c %s "$w/fs") + 1048575) / 1048576 * 2048 ))
        rm -f "$out"
        truncate -s $(( (sec + 8192) * 512 )) "$out"
        printf 'label: dos\nstart=2048, size=%d, type=5\nstart=4096, size=%d, type=83\n' \
            $((sec + 4096)) "$sec" | sfdisk -q "$out" >/dev/null || fail "sfdisk (logical) failed"
        dd if="$w/fs" of="$out" bs=512 seek=4096 conv=notrunc status=none ;;
    esp-bls)
        local mb=$(( $(du -sm "$w/esp" | cut -f1) + ${ESP_SLACK_MB:-40} ))
        VFAT_OPTS=${ESP_VFAT_OPTS--F 32} mk_vfat "$w/esp.img" "$mb" "$w/esp"
        mk_part_disk "$out" gpt "U $w/esp.img" "L $w/fs" ;;
    esac
    rm -rf "$w"
}

debian_kernel() {
    local cache=$VDK_BUILD/tests/debian-kernel pkg try
    mkdir -p "$cache"
    if [ ! -d "$cache/root/boot" ]; then
        pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
        [ -n "$pkg" ] || fail "apt-cache knows no linux-image-amd64 dependency"
        for try in 1 2 3; do
            ls "$cache"/linux-image-*.deb >/dev/null 2>&1 && break
            (cd "$cache" && apt-get download "$pkg" >/dev/null 2>&1) || sleep 5
        done
        ls "$cache"/linux-image-*.deb >/dev/null 2>&1 || fail "apt-get download $pkg failed"
        rm -rf "$cache/root.tmp"
        dpkg -x "$(ls "$cache"/linux-image-*.deb | head -n1)" "$cache/root.tmp" ||
            fail "dpkg -x failed"
        mv "$cache/root.tmp" "$cache/root"
    fi
    DEB_VMLINUZ=$(ls "$cache"/root/boot/vmlinuz-* | head -n1)
    [ -f "$DEB_VMLINUZ" ] || fail "no vmlinuz in the package"
}

mk_initramfs() {
    local out=$1 d=$T/initramfs.d
    rm -rf "$d"
    mkdir -p "$d/bin"
    cp /bin/busybox "$d/bin/busybox"
    printf '#!/bin/busybox sh\necho VDK-IMAGE-INIT\n/bin/busybox poweroff -f\n' >"$d/init"
    chmod +x "$d/init"
    (cd "$d" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$out" ||
        fail "cannot build the initramfs"
    rm -rf "$d"
}
