#!/bin/bash
# SPDX-License-Identifier: MIT
# The ABI of libvdk is exactly what include/vdk/*.h marks VDK_API.
#
#   check-exports.sh SRC_DIR LIBVDK_SO          check the built library
#   check-exports.sh SRC_DIR --symbols FILE     check a list of names (one a
#                                               line; the self-test uses it)
#
# Fails, naming each symbol, when the library exports a symbol that no
# public header declares with VDK_API (an internal helper leaked), or when
# a VDK_API declaration is not exported (a public function went missing).
# Also fails when a front-end (img-tool, nbd-server, guest-boot) includes
# an internal header of the library.
set -euo pipefail
src=$1 lib=$2
want=$(mktemp) have=$(mktemp)
trap 'rm -f "$want" "$have"' EXIT

# Names declared VDK_API: the identifier before the first '(' (functions)
# or '[' / ';' (objects), on declarations that may span lines.
perl -0ne 'while (/^VDK_API\b([^;{]*?)\b(vdk_\w+)\s*[\(\[;]/mg) { print "$2\n" }' \
    "$src"/include/vdk/*.h | sort -u >"$want"
[ -s "$want" ] || { echo "no VDK_API declarations found under $src/include/vdk" >&2; exit 1; }

if [ "$lib" = --symbols ]; then
    sort -u "$3" >"$have"
else
    nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' |
        sed 's/@.*//' | sort -u >"$have"
fi

# An ASan build adds an ODR indicator, __odr_asan.NAME, beside each exported
# object: it is the sanitizer's, and fine when NAME itself is public.
odr=$(mktemp)
grep -E '^__odr_asan[.]' "$have" | sed 's/^__odr_asan[.]//' | sort -u >"$odr" || true
odr_public=$(comm -12 "$want" "$odr" | sed 's/^/__odr_asan./')
if [ -n "$odr_public" ]; then
    grep -vxF -f <(printf '%s\n' $odr_public) "$have" >"$odr" || true
    sort -u "$odr" >"$have"
fi
rm -f "$odr"

rc=0
extra=$(comm -13 "$want" "$have")
missing=$(comm -23 "$want" "$have")
if [ -n "$extra" ]; then
    echo "exported but not public (mark it VDK_API in include/vdk or keep it internal):" >&2
    printf '  %s\n' $extra >&2
    rc=1
fi
if [ -n "$missing" ]; then
    echo "declared VDK_API but not exported:" >&2
    printf '  %s\n' $missing >&2
    rc=1
fi
# Front-ends use the public API only.
leaks=$(grep -rnE '#include "(block|formats|protocols|filters)/' \
            "$src"/img-tool "$src"/nbd-server "$src"/guest-boot 2>/dev/null || true)
if [ -n "$leaks" ]; then
    echo "front-end includes an internal library header:" >&2
    echo "$leaks" >&2
    rc=1
fi
[ "$rc" -ne 0 ] || echo "libvdk exports $(wc -l <"$want") public symbols and nothing else"
exit "$rc"
