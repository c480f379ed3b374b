#!/bin/bash
# SPDX-License-Identifier: MIT
# A real Debian kernel under vdk-boot: the linux-image package is fetched
# (apt-get download + dpkg -x), a busybox-static initramfs loads
# virtio_ring, virtio, virtio_mmio and virtio_blk from the same package,
# reads the host's pattern from /dev/vda (a qcow2 image), writes its own,
# prints a marker and powers off.  Stock kernels need hardware
# virtualization: without vmx/svm in /proc/cpuinfo (e.g. a software
# hypervisor such as kvm_pvm) the test skips.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/boot/common.sh"

grep -qwE 'vmx|svm' /proc/cpuinfo ||
    skip "no vmx/svm in /proc/cpuinfo: a stock kernel cannot boot on this /dev/kvm"
need_kvm

cache=$VDK_BUILD/tests/debian-kernel
mkdir -p "$cache"
if [ ! -d "$cache/root/boot" ]; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }')
    [ -n "$pkg" ] || fail "apt-cache knows no linux-image-amd64 dependency"
    (cd "$cache" && apt-get download "$pkg") || fail "apt-get download $pkg failed"
    rm -rf "$cache/root"
    dpkg -x "$cache"/linux-image-*.deb "$cache/root" || fail "dpkg -x failed"
fi
kernel=$(ls "$cache"/root/boot/vmlinuz-* | head -n1)
[ -f "$kernel" ] || fail "no vmlinuz in the package"
kver=${kernel##*/vmlinuz-}
mods=$cache/root/lib/modules/$kver
[ -d "$mods" ] || mods=$cache/root/usr/lib/modules/$kver
[ -d "$mods" ] || fail "no modules for $kver in the package"

# The initramfs: static busybox, the four modules (decompressed), /init.
ird=$T/initramfs
mkdir -p "$ird/bin" "$ird/lib/modules"
cp /bin/busybox "$ird/bin/busybox"
file "$ird/bin/busybox" 2>/dev/null | grep -q 'statically linked' ||
    ldd "$ird/bin/busybox" 2>&1 | grep -q 'not a dynamic' ||
    fail "/bin/busybox is not static (install busybox-static)"
loadlist=
for m in virtio_ring virtio virtio_mmio virtio_blk; do
    f=$(find "$mods/kernel" -name "$m.ko*" | head -n1)
    if [ -z "$f" ]; then
        grep -q "/$m.ko" "$mods/modules.builtin" ||
            fail "module $m is neither in the package nor built in"
        continue
    fi
    case $f in
    *.ko) cp "$f" "$ird/lib/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$ird/lib/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$ird/lib/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$f" >"$ird/lib/modules/$m.ko" ;;
    *) fail "unknown module compression: $f" ;;
    esac
    loadlist="$loadlist $m"
done
cat >"$ird/init" <<INIT
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# Dependency order varies between kernel versions: two passes.
for pass in 1 2; do
    for m in $loadlist; do
        grep -q "^\$m " /proc/modules || insmod /lib/modules/\$m.ko 2>/dev/null
    done
done
for i in \$(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.1; done
[ -b /dev/vda ] || { echo VDK-DEBIAN-FAIL no /dev/vda; poweroff -f; }
first=\$(dd if=/dev/vda bs=512 count=1 2>/dev/null | od -An -tx1 | head -n1 | tr -d ' ')
[ "\$first" = 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a ] || { echo "VDK-DEBIAN-FAIL pattern \$first"; poweroff -f; }
dd if=/dev/zero bs=65536 count=1 2>/dev/null | tr '\\000' '\\303' |
    dd of=/dev/vda bs=65536 seek=16 conv=fsync 2>/dev/null
sync
echo VDK-DEBIAN-PASS
poweroff -f
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$T/initrd.gz" ||
    fail "cannot build the initramfs"

# The disk: qcow2 when libvdk has the driver.
fmt=qcow2
if ! have_format qcow2; then
    echo "note: libvdk has no qcow2 driver in this build; using a raw disk" >&2
    fmt=raw
fi
qemu-img create -q -f $fmt "$T/disk.$fmt" 64M
retry_setup qemu-io -f $fmt -c "write -P 0x5a 0 64k" "$T/disk.$fmt" >/dev/null

boot --kernel "$kernel" --initrd "$T/initrd.gz" --mem 1G --cpus 2 \
     --append "console=ttyS0 panic=-1 loglevel=4" \
     --disk "$T/disk.$fmt,format=$fmt" --console-log "$T/console" --timeout 600
cat "$T/out"
[ "$rc" -eq 0 ] || fail "Debian kernel run ended with exit $rc: $(cat "$T/err")"
grep -q VDK-DEBIAN-PASS "$T/console" || fail "initramfs did not print its marker"
out=$(qemu-io -f $fmt -c "read -P 0xc3 1M 64k" "$T/disk.$fmt" 2>&1)
case $out in *"verification failed"*) fail "guest write missing: $out" ;; esac
[ $fmt = raw ] || qemu-img check -q "$T/disk.$fmt" || fail "image corrupt after the run"
echo "debian kernel $kver: ok"
