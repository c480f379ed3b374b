#!/bin/bash
# SPDX-License-Identifier: MIT
# The vdk-nbd systemd units as `meson install` puts them: sandboxed,
# `systemd-analyze verify` finds nothing to say about them (ExecStart
# pointed at the installed binary in a throwaway root, the man page in
# Documentation= looked up there too), and the service's command line,
# given the socket the way systemd would (systemd-socket-activate, which
# sets LISTEN_FDS) and the exports from an /etc/vdk/nbd/NAME.conf-style
# environment file, serves the image to nbdinfo and nbdcopy.
. "$VDK_SRC/tests/integration/lib.sh"
D=$T/root
meson install -C "$VDK_BUILD" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; fail "meson install failed"; }
svc=$(find "$D" -name 'vdk-nbd@.service' | head -n 1)
sock=$(find "$D" -name 'vdk-nbd@.socket' | head -n 1)
[ -n "$svc" ] && [ -n "$sock" ] || fail "units not installed"
case $svc in */lib/systemd/system/*) ;; *) fail "units not in a systemd unit directory: $svc" ;; esac

for d in ProtectSystem=full PrivateTmp=yes NoNewPrivileges=yes \
         'EnvironmentFile=/etc/vdk/nbd/%i.conf' 'Requires=vdk-nbd@%i.socket'; do
    grep -qxF "$d" "$svc" || fail "vdk-nbd@.service lacks $d"
done
grep -qx 'ListenStream=/run/vdk-nbd/%i.sock' "$sock" || fail "socket unit: ListenStream"
exec_line=$(sed -n 's/^ExecStart=//p' "$svc")
bin=${exec_line%% *}
[ -x "$D$bin" ] || fail "ExecStart names $bin, which meson install did not put there"

# verify an instance of each template, ExecStart moved into the root.
mkdir "$T/units"
sed "s|^ExecStart=$bin|ExecStart=$D$bin|" "$svc" >"$T/units/vdk-nbd@demo.service"
cp "$sock" "$T/units/vdk-nbd@demo.socket"
man=$(dirname "$(dirname "$(find "$D" -name vdk-nbd.8 | head -n 1)")")
rc=0
MANPATH=$man systemd-analyze verify "$T/units/vdk-nbd@demo.socket" \
    "$T/units/vdk-nbd@demo.service" >"$T/verify" 2>&1 || rc=$?
[ "$rc" = 0 ] && [ ! -s "$T/verify" ] || { cat "$T/verify"; fail "systemd-analyze verify (exit $rc)"; }
echo "ok systemd-analyze verify"

# The service's command line under socket activation.
qimg create -q -f qcow2 "$T/disk.qcow2" 8M
retry_setup qemu-io -c 'write -P 0x5e 1M 1M' "$T/disk.qcow2" >/dev/null
cat >"$T/demo.conf" <<CONF
# exports of vdk-nbd@demo
VDK_NBD_ARGS="--export name=disk,file=$T/disk.qcow2,format=qcow2,readonly=on --shared=4"
CONF
args=$(env -i bash -c 'set -a; . "$1"; printf %s "$VDK_NBD_ARGS"' _ "$T/demo.conf")
cmd=${exec_line/\$VDK_NBD_ARGS/$args}
cmd=${cmd/#$bin/$VDK_BUILD/nbd-server/vdk-nbd}
# shellcheck disable=SC2086 # systemd splits $VDK_NBD_ARGS at white space too
systemd-socket-activate -l "$T/demo.sock" $cmd 2>"$T/nbd.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$T"' EXIT
for _ in $(seq 100); do [ -S "$T/demo.sock" ] && break; sleep 0.1; done
[ -S "$T/demo.sock" ] || fail "no socket"
uri="nbd+unix:///disk?socket=$T/demo.sock"
nbdinfo --list "nbd+unix://?socket=$T/demo.sock" >"$T/list" || { cat "$T/nbd.err"; fail "nbdinfo --list"; }
grep -q 'export="disk"' "$T/list" || { cat "$T/list"; fail "export 'disk' not listed"; }
nbdcopy "$uri" "$T/out.raw" || { cat "$T/nbd.err"; fail "nbdcopy"; }
qimg convert -O raw "$T/disk.qcow2" "$T/ref.raw"
same_file "$T/out.raw" "$T/ref.raw"
kill "$pid"; wait "$pid" 2>/dev/null || true
echo "ok socket activation with the unit's command line"
