#!/bin/bash
# SPDX-License-Identifier: MIT
# Crash consistency of VHDX allocation and log writes: replay cut write
# logs and check every crash state (vdk read-only and read-write, qemu-img
# check -r all where qemu reads the image).  See tests/unit/vhdx/vhdx-crash.c.
. "$VDK_SRC/tests/integration/lib.sh"
"$VDK_BUILD/tests/unit/vhdx/vhdx-crash" "$T" || fail "vhdx crash consistency"
