#!/bin/bash
# SPDX-License-Identifier: MIT
# Secrets: --object secret with data= (warns) and file=, the environment
# variables VDK_SECRET_<ID> and VDK_SECRET, and the no-echo tty prompt.
# The passphrase must appear in no output of any run, failing or not.
. "$VDK_SRC/tests/integration/lib.sh"
. "$VDK_SRC/tests/integration/luks/common.sh"

P='Zq7-unique-Passphrase-4711'
W='Wrong-Passphrase-0815'
S=$(secret_file s "$P")
SW=$(secret_file w "$W")
img=$T/img.luks
log=$T/all-output
: >"$log"
run() { # run CMD... recording stdout+stderr, return its status
    local rc=0
    "$@" >>"$log" 2>&1 </dev/null || rc=$?
    return $rc
}
ok()  { run "$@" || fail "should succeed: $*"; }
nok() { if run "$@"; then fail "should fail: $*"; fi; }

ok LT --object "secret,id=s,data=$P" create luks "$img" 1M key-secret=s,iter-time=10
grep -q 'visible to other users' "$log" || fail "data= gives no warning"
head -c 1M /dev/urandom >"$T/pt"
ok LT --object "secret,id=s,file=$S" write "driver=luks,key-secret=s,file.filename=$img" "$T/pt"
ok LT --object "secret,id=s,file=$S" info "driver=luks,key-secret=s,file.filename=$img"
ok env VDK_SECRET_S="$P" "$LUKS_TOOL" read "driver=luks,key-secret=s,file.filename=$img" "$T/o1"
same_file "$T/o1" "$T/pt"
ok env VDK_SECRET_MY_KEY_1="$P" "$LUKS_TOOL" read "driver=luks,key-secret=my.key-1,file.filename=$img" "$T/o1"
ok env VDK_SECRET="$P" "$LUKS_TOOL" read "driver=luks,file.filename=$img" "$T/o1"
same_file "$T/o1" "$T/pt"
# failures: wrong passphrase in every form, missing secret, bad object
nok LT --object "secret,id=s,file=$SW" read "driver=luks,key-secret=s,file.filename=$img" "$T/o1"
nok LT --object "secret,id=s,data=$W" read "driver=luks,key-secret=s,file.filename=$img" "$T/o1"
nok env VDK_SECRET_S="$W" "$LUKS_TOOL" read "driver=luks,key-secret=s,file.filename=$img" "$T/o1"
nok LT read "driver=luks,file.filename=$img" "$T/o1"
nok LT --object "secret,id=s,data=$P,bogus=1" read "driver=luks,key-secret=s,file.filename=$img" "$T/o1"
nok LT --object "secret,id=s,data=$P" --object "secret,id=s,data=$P" info "driver=luks,key-secret=s,file.filename=$img"
nok LT --object "secret,id=s,data=$P,file=$S" info "driver=luks,key-secret=s,file.filename=$img"
nok LT --object "secret,id=s,data=$P" create luks "$T/x" 1M key-secret=s,cipher-alg=aes-999
nok LT --object "secret,id=s,data=$P" amend "driver=luks,key-secret=s,file.filename=$img" state=active,new-secret=nope
nok LT --object "secret,id=s,data=$P" --object "secret,id=w,data=$W" amend "driver=luks,key-secret=s,file.filename=$img" state=inactive,old-secret=w
ok LT --object "secret,id=s,data=$P" --object "secret,id=w,data=$W" amend "driver=luks,key-secret=s,file.filename=$img" state=active,new-secret=w,iter-time=10
ok LT --object "secret,id=s,data=$P" --object "secret,id=w,data=$W" amend "driver=luks,key-secret=s,file.filename=$img" state=inactive,old-secret=w
# the same through vdk-img, succeeding and failing
ok "$VDK_IMG" create -f luks --object "secret,id=s,data=$P" -o key-secret=s,iter-time=10 "$T/v.luks" 1M
ok "$VDK_IMG" info --output=json --object "secret,id=s,data=$P" --image-opts "driver=luks,key-secret=s,file.filename=$T/v.luks"
ok "$VDK_IMG" convert --object "secret,id=s,data=$P" -O luks -o key-secret=s,iter-time=10 "$T/pt" "$T/c.luks"
nok "$VDK_IMG" convert --object "secret,id=s,data=$W" --image-opts "driver=luks,key-secret=s,file.filename=$T/c.luks" -O raw "$T/o3"
nok "$VDK_IMG" amend --object "secret,id=s,data=$W" --object "secret,id=n,data=$P" --image-opts "driver=luks,key-secret=s,file.filename=$T/c.luks" -o state=active,new-secret=n
nok "$VDK_IMG" create -f luks --object "secret,id=s,data=$P" -o key-secret=s,cipher-alg=bogus "$T/x.luks" 1M
nok "$VDK_IMG" create -f luks --object "secret,id=s,data=$P,x=$W" -o key-secret=s "$T/x.luks" 1M
grep -q 'invalid passphrase' "$log" || fail "no 'invalid passphrase' message"

# The tty prompt, through a pseudo-terminal: the answer is not echoed.
/usr/bin/python3 - "$LUKS_TOOL" "$img" "$T/o2" "$P" >>"$log" 2>&1 <<'PY' || fail "tty prompt"
import os, pty, sys
tool, img, out, pw = sys.argv[1:5]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tool, [tool, "read", "driver=luks,file.filename=" + img, out])
buf = b""
while b"passphrase" not in buf:
    buf += os.read(fd, 1024)
while not buf.rstrip().endswith(b":"):
    buf += os.read(fd, 1024)
os.write(fd, pw.encode() + b"\n")
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(buf.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PY
same_file "$T/o2" "$T/pt"
grep -q 'Enter LUKS passphrase' "$log" || fail "no prompt"

if grep -F -e "$P" -e "$W" "$log"; then
    fail "a passphrase appeared in the output"
fi
echo "ok: $(wc -l <"$log") lines of output, no passphrase"
