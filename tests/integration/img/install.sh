#!/bin/bash
# SPDX-License-Identifier: MIT
# "meson install --destdir" puts binaries, library, headers, pkg-config
# file, man page and bash completion in place, and the completion loads.
. "$VDK_SRC/tests/integration/lib.sh"
D=$T/root
meson install -C "$VDK_BUILD" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; fail "meson install failed"; }

find_one() {
    local f
    f=$(find "$D" -path "*$1" | head -n 1)
    [ -n "$f" ] || fail "not installed: $1"
    echo "$f"
}
bin=$(find_one /bin/vdk-img)
find_one '/libvdk.so*' >/dev/null
find_one /include/vdk/block.h >/dev/null
find_one /include/vdk/options.h >/dev/null
pc=$(find_one /pkgconfig/vdk.pc)
man=$(find_one /man1/vdk-img.1)
comp=$(find_one /bash-completion/completions/vdk-img)

grep -q '^Name: vdk' "$pc" || fail "pkg-config file lacks Name"
grep -q -- '-lvdk' "$pc" || fail "pkg-config file lacks -lvdk"
grep -q '^\.TH "*vdk-img"* "*1' "$man" || fail "man page has no .TH header"
grep -q 'qemu-img' "$man" || fail "man page content"
[ -x "$bin" ] || fail "vdk-img not executable"

# The completion file loads and registers, and completes from the program.
out=$(bash -c "source '$comp'; complete -p vdk-img") || fail "completion does not load"
echo "$out" | grep -q -- '-F _vdk_img vdk-img' || fail "completion not registered: $out"
words=$(PATH="$VDK_BUILD/img-tool:$PATH" bash -c "source '$comp'
    COMP_WORDS=(vdk-img in); COMP_CWORD=1; _vdk_img; echo \${COMPREPLY[*]}
    COMP_WORDS=(vdk-img info --out); COMP_CWORD=2; _vdk_img; echo \${COMPREPLY[*]}
    COMP_WORDS=(vdk-img create -f r); COMP_CWORD=3; _vdk_img; echo \${COMPREPLY[*]}")
[ "$words" = "info
--output=
raw" ] || fail "completion results: $words"
echo ok
