#!/bin/bash
# SPDX-License-Identifier: MIT
# Crash consistency: replay cut write logs of qcow2 workloads (allocation,
# refcount-table growth, compressed writes, discard, copy-on-write) and
# check every crash state with qemu-img check and a read-back of flushed
# data.  See tests/unit/qcow2/qcow2-crash.c.
. "$(dirname "$0")/common.sh"
"$VDK_BUILD/tests/unit/qcow2/qcow2-crash" "$T" || fail "crash consistency"
