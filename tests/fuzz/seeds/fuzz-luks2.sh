#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-luks2: LUKS2 headers (both copies + keyslot areas) made now
# by cryptsetup with small metadata and keyslot areas, passphrase "x".
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf x >"$tmp/pass"
n=0
cs() { # cryptsetup luksFormat args...
    n=$((n + 1))
    truncate -s 1M "$tmp/img"
    cryptsetup luksFormat -q --type luks2 --key-file "$tmp/pass" --key-size 256 \
        --luks2-metadata-size 16k --luks2-keyslots-size 128k "$@" "$tmp/img" 2>/dev/null
    # keep the headers and keyslots (160 KiB), drop the payload
    head -c 163840 "$tmp/img" >"$out/cryptsetup-$n"
    rm -f "$tmp/img"
}
cs --pbkdf pbkdf2 --pbkdf-force-iterations 1000
cs --pbkdf argon2id --pbkdf-memory 32 --pbkdf-force-iterations 4
cs --pbkdf argon2i --pbkdf-memory 64 --pbkdf-force-iterations 4 --sector-size 4096
cs --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --hash sha512 --cipher aes-cbc-essiv:sha256 \
    --label fuzz --subsystem vdk
# One seed per JSON type confusion (each was, or could be, a crash: a
# "tokens" string once left a dangling pointer), checksums resealed.
E() { /usr/bin/python3 "$(dirname "$0")/../../integration/luks/luks2-edit.py" "$@"; }
t=0
for e in 'j["tokens"]="x"' 'j["tokens"]=5' 'j["tokens"]=[1]' 'j["tokens"]=None' \
         'del j["tokens"]' 'j["tokens"]={"0":"x"}' 'j["tokens"]={"0":{"type":"t","keyslots":"0"}}' \
         'j["tokens"]={"0":{"type":"t","keyslots":[0]}}' 'j["config"]="x"' 'j["config"]=[]' \
         'j["config"]["requirements"]="x"' 'j["config"]["requirements"]={"mandatory":"x"}' \
         'j["segments"]["0"]=5' 'j["segments"]["0"]["sector_size"]="512"' 'j["digests"]="x"' \
         'j["digests"]["0"]="x"' 'j["digests"]["0"]["keyslots"]={}' 'j["keyslots"]["0"]=[]' \
         'j["keyslots"]["0"]["kdf"]=[]' 'j["keyslots"]["0"]["kdf"]["salt"]=7' \
         'j["keyslots"]["0"]["area"]["offset"]=32768' 'j["keyslots"]["0"]["af"]["stripes"]="4000"'; do
    t=$((t + 1))
    cp "$out/cryptsetup-1" "$out/types-$t"
    E "$out/types-$t" "$e"
done
