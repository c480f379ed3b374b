# SPDX-License-Identifier: MIT
# Helpers shared by the LUKS integration tests (sourced after lib.sh).
#   LT ...             - luks-tool (libvdk create/read/write/info/amend)
#   SC ...             - independent sector en/decryption with openssl enc
#   volkey IMG PASS    - the volume key cryptsetup dumps, as hex
#   secret_opts ID PASS - "--object secret,id=ID,file=F" (file in $T)
LUKS_TOOL=${LUKS_TOOL:-$VDK_BUILD/tests/unit/crypto/luks-tool}
LT() { "$LUKS_TOOL" "$@"; }
SC() { /usr/bin/python3 "$VDK_SRC/tests/integration/luks/sector-crypt.py" "$@"; }

volkey() {
    cryptsetup luksDump --dump-volume-key -q --key-file <(printf %s "$2") "$1" |
        sed -n '/MK dump:/,$p' | sed 's/MK dump://' | tr -d ' \t\n'
}

secret_file() { # ID PASS -> path of a file holding PASS
    printf %s "$2" >"$T/secret-$1"
    echo "$T/secret-$1"
}

# Bytes [off, off+len) of a file to stdout.
slice() { dd if="$1" bs=512 skip=$(($2 / 512)) count=$(($3 / 512)) status=none; }
