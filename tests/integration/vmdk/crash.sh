#!/bin/bash
# SPDX-License-Identifier: MIT
# Crash consistency of VMDK sparse allocation: replay cut write logs of
# workloads (allocating writes, zeroed grains, copy-on-write from a VMDK
# parent) and check every crash state with qemu-img check and a read-back
# of flushed data.  See tests/unit/vmdk/vmdk-crash.c.
. "$VDK_SRC/tests/integration/lib.sh"
"$VDK_BUILD/tests/unit/vmdk/vmdk-crash" "$T" || fail "crash consistency"
