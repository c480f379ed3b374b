# SPDX-License-Identifier: MIT
# The Debian kernel and the initramfs pieces of the real-kernel lane.
# Sourced by tests/integration/boot/debian-kernel.sh and bench/boot.
#   lane_fetch_kernel CACHE     - the current Debian 12 linux-image-6.1.0-*-amd64
#                                 (apt-get download, retried; dpkg -x; depmod);
#                                 sets KVER, KERNEL, MODDIR
#   lane_modules DEST M...      - copy modules M and what they need (modules.dep),
#                                 decompressed, into DEST/lib/modules, and their
#                                 load order into DEST/lib/modules/order
#   lane_vmlinux BZIMAGE OUT    - the ELF vmlinux inside a bzImage (xz payload),
#                                 for the PVH entry (CONFIG_PVH)
#   lane_busybox DEST           - static busybox at DEST/bin/busybox
#   lane_copy_binary DEST FILE [NAME] - FILE (as DEST/bin/NAME) and its shared
#                                 libraries (ldd) into DEST
#   lane_cpio DIR OUT           - newc archive of DIR (uncompressed: unpacking
#                                 beats decompressing under TCG)

lane_kernel_package() {
    local pkg
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          awk '/Depends: linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
              grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n1)
    fi
    [ -n "$pkg" ] || { echo "apt-cache knows no linux-image-6.1.0-*-amd64 (run apt-get update)" >&2; return 1; }
    echo "$pkg"
}

lane_fetch_kernel() {
    local cache=$1 pkg dir try
    pkg=$(lane_kernel_package) || return 1
    dir=$cache/$pkg
    if [ ! -f "$dir/.done" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        # The download is a set-up step that may flake (mirror, network):
        # retried.  The rest is local and is not.
        for try in 1 2 3 4; do
            (cd "$dir" && apt-get download "$pkg" >"$dir/download.log" 2>&1) && break
            [ "$try" = 4 ] && { cat "$dir/download.log" >&2; echo "apt-get download $pkg failed" >&2; return 1; }
            sleep $((try * 5))
        done
        dpkg -x "$dir"/"$pkg"_*.deb "$dir/root" || { echo "dpkg -x failed" >&2; return 1; }
        rm -f "$dir"/"$pkg"_*.deb
        local kv
        kv=$(ls "$dir/root/lib/modules")
        depmod -b "$dir/root" "$kv" || { echo "depmod failed" >&2; return 1; }
        touch "$dir/.done"
    fi
    KERNEL=$(ls "$dir"/root/boot/vmlinuz-* | head -n1)
    KVER=${KERNEL##*/vmlinuz-}
    MODDIR=$dir/root/lib/modules/$KVER
    [ -f "$KERNEL" ] && [ -f "$MODDIR/modules.dep" ] || { echo "incomplete kernel package in $dir" >&2; return 1; }
}

# Print the modules.dep paths M needs, dependencies first, each once.
_lane_mod_order() {
    local m=$1 line path deps d
    line=$(grep -E "(^|/)${m//[-_]/[-_]}\.ko(\.[a-z]+)?:" "$MODDIR/modules.dep" | head -n1)
    if [ -z "$line" ]; then
        grep -qE "/${m//[-_]/[-_]}\.ko" "$MODDIR/modules.builtin" && return 0
        echo "module $m is neither in the package nor built in" >&2
        return 1
    fi
    path=${line%%:*}
    deps=${line#*:}
    # modules.dep lists a module's dependencies so that the last loads
    # first.
    for d in $(echo $deps | tr ' ' '\n' | tac); do
        d=${d##*/}
        _lane_mod_order "${d%%.ko*}" || return 1
    done
    echo "$path"
}

lane_modules() {
    local dest=$1 m p name seen=" "
    shift
    mkdir -p "$dest/lib/modules"
    : >"$dest/lib/modules/order"
    for m in "$@"; do
        for p in $(_lane_mod_order "$m") ; do
            case $seen in *" $p "*) continue ;; esac
            seen="$seen$p "
            name=${p##*/}
            name=${name%%.ko*}.ko
            case $p in
            *.ko) cp "$MODDIR/$p" "$dest/lib/modules/$name" ;;
            *.ko.xz) xz -dc "$MODDIR/$p" >"$dest/lib/modules/$name" ;;
            *.ko.zst) zstd -qdc "$MODDIR/$p" >"$dest/lib/modules/$name" ;;
            *.ko.gz) gzip -dc "$MODDIR/$p" >"$dest/lib/modules/$name" ;;
            *) echo "unknown module compression: $p" >&2; return 1 ;;
            esac || return 1
            echo "$name" >>"$dest/lib/modules/order"
        done
    done
}

lane_vmlinux() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import lzma, sys
data = open(sys.argv[1], "rb").read()
at = data.find(b"\xfd7zXZ\x00")
if at < 0:
    sys.exit("no xz payload in " + sys.argv[1])
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
if out[:4] != b"\x7fELF":
    sys.exit("the payload of %s is not an ELF vmlinux" % sys.argv[1])
open(sys.argv[2], "wb").write(out)
PY
}

lane_busybox() {
    mkdir -p "$1/bin"
    cp /bin/busybox "$1/bin/busybox"
    ldd "$1/bin/busybox" 2>&1 | grep -q 'not a dynamic' ||
        { echo "/bin/busybox is not static (install busybox-static)" >&2; return 1; }
}

# A binary and every library ldd names (libraries in one directory, on
# the loader's default path).
lane_copy_binary() {
    local dest=$1 bin=$2 name=${3:-${2##*/}} lib
    mkdir -p "$dest/bin" "$dest/lib/x86_64-linux-gnu" "$dest/lib64"
    cp "$bin" "$dest/bin/$name" || return 1
    for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }'); do
        case $lib in
        */ld-linux-x86-64.so.2) cp -L "$lib" "$dest/lib64/ld-linux-x86-64.so.2" ;;
        *) cp -L "$lib" "$dest/lib/x86_64-linux-gnu/" ;;
        esac || return 1
    done
}

lane_cpio() {
    (cd "$1" && find . | cpio -o -H newc --quiet) >"$2"
}
