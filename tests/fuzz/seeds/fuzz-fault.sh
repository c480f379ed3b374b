#!/bin/bash
# SPDX-License-Identifier: MIT
# Seeds for fuzz-fault: control files of the fault filter as users write
# them, and the malformed ones it must refuse.
#   fuzz-fault.sh OUTDIR
set -eu
mkdir -p "$1"
out=$(cd "$1" && pwd)
n=0
seed() { printf "$1" >"$out/fault-$(printf '%03d' "$n")"; n=$((n + 1)); }

seed ''
seed 'ops=read|write,errno=EIO,offset=1M,length=64K\n'
seed '# comment\n\nops=flush,errno=ENOSPC\r\nops=trim|zero,once=on\n'
seed 'ops=all,rate=0.5,seed=42,after=3\n'
seed 'ops=read,delay=10ms\nops=write,delay=1.5s,offset=4k\n'
seed 'errno=EFOO\n'
seed 'rate=2\n'
seed 'ops=read,control=/etc/passwd\n'
seed 'offset=2G\n'
seed 'length=0\n'
seed 'delay=99999s\n'
seed 'ops=read||write\n'
seed 'after=0x10,seed=010,once=yes\n'
seed '  ops=read  \n\t\n'
