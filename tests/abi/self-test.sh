#!/bin/bash
# SPDX-License-Identifier: MIT
# The export check must fail when an internal symbol is exported and when
# a public one is missing: feed it the library's real list with one name
# added, and with one removed.
set -euo pipefail
src=$1 lib=$2 check=$src/tests/abi/check-exports.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' | sed 's/@.*//' >"$tmp/real"
"$check" "$src" --symbols "$tmp/real" >/dev/null
{ cat "$tmp/real"; echo qcow2_read_header; } >"$tmp/extra"
if "$check" "$src" --symbols "$tmp/extra" 2>"$tmp/err"; then
    echo "FAIL: an exported internal symbol passed the check" >&2; exit 1
fi
grep -q qcow2_read_header "$tmp/err" || { echo "FAIL: message does not name the symbol" >&2; exit 1; }
grep -v '^vdk_open$' "$tmp/real" >"$tmp/missing"
if "$check" "$src" --symbols "$tmp/missing" 2>"$tmp/err"; then
    echo "FAIL: a missing public symbol passed the check" >&2; exit 1
fi
grep -q vdk_open "$tmp/err" || { echo "FAIL: message does not name the symbol" >&2; exit 1; }
# ASan's ODR indicators pass beside a public object, not beside an internal one.
{ cat "$tmp/real"; echo __odr_asan.vdk_prealloc_names; } >"$tmp/odr"
"$check" "$src" --symbols "$tmp/odr" >/dev/null 2>"$tmp/err" ||
    { echo "FAIL: ASan's indicator for a public object failed the check" >&2; cat "$tmp/err" >&2; exit 1; }
{ cat "$tmp/real"; echo __odr_asan.qcow2_table_names; } >"$tmp/odr"
if "$check" "$src" --symbols "$tmp/odr" 2>/dev/null; then
    echo "FAIL: ASan's indicator for an internal object passed the check" >&2; exit 1
fi
echo "export check fails on an extra and on a missing symbol"
