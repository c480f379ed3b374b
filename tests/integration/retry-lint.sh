#!/bin/bash
# SPDX-License-Identifier: MIT
# Every qemu-img step that creates or measures LUKS key slots runs its PBKDF
# benchmark, which fails on a loaded host ("Unable to get accurate CPU
# usage").  Such a
# set-up step must go through retry_setup (lib.sh); this check finds one-line
# calls that do not, so the suite stays green on a busy machine.
set -euo pipefail
src=${VDK_SRC:?}
pre='(^|[;&|(]|then|do)[[:space:]]*(qimg|qemu-img|q)[[:space:]]+'
bad=$(grep -rnE --include='*.sh' \
        -e "${pre}create[^#]*(-f luks|encrypt\.format)" \
        -e "${pre}convert[^#]*(-O luks|encrypt\.format)" \
        -e "${pre}amend[^#]*new-secret" \
        -e "${pre}measure[^#]*(-O luks|encrypt\.format|\\\$ENC)" \
        "$src/tests" "$src/bench" | grep -vE 'retry_setup|seed_retry' || true)
if [ -n "$bad" ]; then
    echo "qemu-img LUKS set-up steps without retry_setup:" >&2
    echo "$bad" >&2
    exit 1
fi
echo "every qemu-img LUKS set-up step retries"
