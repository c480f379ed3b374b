#!/bin/bash
# SPDX-License-Identifier: MIT
# Debian packages: `dpkg-buildpackage -b -us -uc` in a copy of the source
# tree builds vdk-utils, libvdk0 and libvdk-dev; lintian finds no errors;
# their contents are where Debian wants them; unpacked with `dpkg -x` into
# a throwaway root, the packaged vdk-img runs on the packaged library and
# creates and reads an image that qemu-img agrees with.
. "$VDK_SRC/tests/integration/lib.sh"
for t in dpkg-buildpackage dh lintian; do
    command -v "$t" >/dev/null || fail "$t missing (dpkg-dev, debhelper, lintian)"
done

# The source tree without build trees or earlier package builds.
S=$T/src/vdk
mkdir -p "$S"
if git -C "$VDK_SRC" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$VDK_SRC" ls-files -z -co --exclude-standard |
        tar -C "$VDK_SRC" --null -T - -cf - | tar -C "$S" -xf -
else
    tar -C "$VDK_SRC" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$S" -xf -
fi
[ -f "$S/debian/control" ] || fail "no debian/ in the copy"

(cd "$S" && dpkg-buildpackage -b -us -uc -j2) >"$T/build.log" 2>&1 ||
    { tail -n 60 "$T/build.log"; fail "dpkg-buildpackage failed"; }
cd "$T/src"
for p in vdk-utils libvdk0 libvdk-dev; do
    [ -f "$(echo "${p}"_*.deb)" ] || fail "no $p package built"
done
lintian --fail-on error --no-tag-display-limit vdk_*.changes >"$T/lintian" 2>&1 ||
    { cat "$T/lintian"; fail "lintian reports errors"; }
echo "ok dpkg-buildpackage, lintian: $(grep -c '^[EW]:' "$T/lintian") errors and warnings"

# What goes where.
has() { # PACKAGE PATH-REGEX
    dpkg-deb -c "$1"_*.deb | awk '{print $6}' | grep -qE "$2" || fail "$1 lacks $2"
}
has vdk-utils '^\./usr/bin/vdk-img$'
has vdk-utils '^\./usr/bin/vdk-nbd$'
has vdk-utils '^\./usr/bin/vdk-boot$'
has vdk-utils '^\./usr/share/man/man1/vdk-img\.1\.gz$'
has vdk-utils '^\./usr/share/man/man8/vdk-nbd\.8\.gz$'
has vdk-utils '^\./usr/share/bash-completion/completions/vdk-img$'
has vdk-utils '^\./lib/systemd/system/vdk-nbd@\.socket$'
has libvdk0 '^\./usr/lib/[^/]+/libvdk\.so\.0'
has libvdk-dev '^\./usr/include/vdk/block\.h$'
has libvdk-dev '^\./usr/lib/[^/]+/pkgconfig/vdk\.pc$'
has libvdk-dev '^\./usr/lib/[^/]+/libvdk\.so$'
dpkg-deb -f vdk-utils_*.deb Depends | grep -q 'libvdk0' || fail "vdk-utils does not depend on libvdk0"

# Unpacked into a throwaway root, the programs run on the packaged library.
R=$T/root
for p in vdk-utils libvdk0 libvdk-dev; do dpkg -x "$p"_*.deb "$R"; done
lib=$(dirname "$(find "$R/usr/lib" -name 'libvdk.so.0' | head -n 1)")
img() { LD_LIBRARY_PATH=$lib "$R/usr/bin/vdk-img" "$@"; }
v=$(img --version) || fail "packaged vdk-img --version"
echo "$v" | grep -q '^vdk-img version ' || fail "packaged vdk-img --version: $v"
LD_LIBRARY_PATH=$lib ldd "$R/usr/bin/vdk-img" | grep -q "$lib/libvdk.so.0" ||
    fail "packaged vdk-img does not use the packaged libvdk"
img create -q -f qcow2 "$T/p.qcow2" 4M
retry_setup qemu-io -c 'write -P 0x42 1M 64k' "$T/p.qcow2" >/dev/null
img check "$T/p.qcow2" >/dev/null || fail "packaged vdk-img check"
img compare -f qcow2 -F qcow2 "$T/p.qcow2" "$T/p.qcow2" >/dev/null || fail "packaged vdk-img compare"
LD_LIBRARY_PATH=$lib "$R/usr/bin/vdk-nbd" --version >/dev/null || fail "packaged vdk-nbd --version"
LD_LIBRARY_PATH=$lib PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$R \
    pkg-config --cflags --libs vdk | grep -q -- '-lvdk' || fail "pkg-config vdk"
echo "ok $v from the packages"
