#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk set-up for a fresh Debian 12 machine: install what is needed (apt),
# build, and run the main job on a built-in example: create an image, fill
# it, convert it, then show `info` and `map` of the result.
#   ./scripts/setup.sh            (as root, or with sudo for the apt step)
# VDK_SKIP_APT=1 skips the apt step.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DEPS="build-essential meson ninja-build pkg-config zlib1g-dev libzstd-dev libdeflate-dev
  libssl-dev libnbd-dev libcmocka-dev libjson-c-dev libargon2-dev librbd-dev scdoc
  qemu-utils"

if [ "${VDK_SKIP_APT:-0}" != 1 ]; then
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    # Wait for another apt/dpkg's lock (up to 10 minutes) rather than fail,
    # and retry the index download once or twice on a network hiccup.
    APT=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
    for try in 1 2 3; do
        $SUDO "${APT[@]}" update -qq && break
        [ "$try" = 3 ] && exit 1
        echo "apt-get update failed (attempt $try of 3), retrying in $((try * 10)) s" >&2
        sleep $((try * 10))
    done
    # shellcheck disable=SC2086
    $SUDO "${APT[@]}" install -y -qq --no-install-recommends $BUILD_DEPS
fi

[ -d build ] || meson setup build
ninja -C build

IMG=build/img-tool/vdk-img
EX=build/example
rm -rf "$EX" && mkdir -p "$EX"
echo "== create a 64 MiB raw image and fill parts of it"
$IMG create -f raw "$EX/disk.raw" 64M
printf 'vdk example boot sector\n' | dd of="$EX/disk.raw" conv=notrunc status=none
head -c 4M /dev/urandom | dd of="$EX/disk.raw" bs=1M seek=8 conv=notrunc status=none
# (process substitution: `yes` ends on SIGPIPE, which pipefail would see)
head -c 2M < <(yes 'some text in the middle of the disk') |
    dd of="$EX/disk.raw" bs=1M seek=40 conv=notrunc status=none
echo "== convert it (sparse: zero runs become holes)"
$IMG convert -p -f raw -O raw "$EX/disk.raw" "$EX/copy.raw"
$IMG compare -f raw -F raw "$EX/disk.raw" "$EX/copy.raw"
echo "== info"
$IMG info "$EX/copy.raw"
echo "== map"
$IMG map -f raw "$EX/copy.raw"
