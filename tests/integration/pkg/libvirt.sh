#!/bin/bash
# SPDX-License-Identifier: MIT
# vdk-img as libvirt's qemu-img.  libvirt's storage driver runs `qemu-img`
# from its PATH to create, clone, resize and convert volumes.  The same
# virsh session runs twice, each time against a private libvirtd (session
# mode: its own XDG directories, socket and directory pool under a scratch
# directory, stopped by its PID) whose PATH starts with a `qemu-img`:
# once the real one, once vdk-img (run under the name qemu-img).  For raw
# and qcow2 volumes: vol-create-as (plain, metadata preallocation, with a
# backing volume), vol-clone, vol-resize (grow and shrink), vol-create-from
# (convert between the formats), vol-info, vol-dumpxml and vol-download.
# Everything virsh prints, every qemu-img command line libvirt ran, and
# every downloaded volume must be identical; the real qemu-img must find
# vdk's qcow2 volumes clean.
. "$VDK_SRC/tests/integration/lib.sh"
command -v libvirtd >/dev/null && command -v virsh >/dev/null ||
    fail "libvirtd or virsh missing (libvirt-daemon, libvirt-clients)"

# libvirtd run by root is the system daemon; a private session daemon needs
# another user.  As root, run it (and virsh) as nobody, in a directory
# nobody can reach (the build tree may not be, e.g. under /root).
AS=()
W=$(mktemp -d "${TMPDIR:-/tmp}/vdk-libvirt.XXXXXX")
if [ "$(id -u)" = 0 ]; then
    AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    chown 65534:65534 "$W"
fi
chmod 755 "$W"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -n "${KEEP:-}" ] || rm -rf "$W" "$T"
}
trap cleanup EXIT

# vdk-img and its library, laid out as in the build tree (RUNPATH $ORIGIN/..).
mkdir -p "$T/vdk/img-tool"
cp "$VDK_IMG" "$T/vdk/img-tool/vdk-img"
cp -L "$VDK_BUILD/libvdk.so.0" "$T/vdk/"
cp -r "$T/vdk" "$W/impl"

# One qemu-img per run: logs its command line and stderr, then runs the
# implementation under the name qemu-img.
wrapper() { # DIR COMMAND
    mkdir -p "$1/bin"
    cat >"$1/bin/qemu-img" <<WRAP
#!/bin/bash
printf '%s\n' "qemu-img \$*" >>"$1/calls"
export ASAN_OPTIONS='${ASAN_OPTIONS:-}' UBSAN_OPTIONS='${UBSAN_OPTIONS:-}'
exec -a qemu-img $2 "\$@" 2>>"$1/stderr"
WRAP
    chmod 755 "$1/bin/qemu-img"
    touch "$1/calls" "$1/stderr"
}

head -c 1M /dev/urandom >"$T/data"
cp "$T/data" "$W/data"
chmod 644 "$W/data"

# The session, one run.  Both runs use the same directory, $W/run (so that
# paths libvirt records, e.g. in a backing file name, are the same), moved
# to $W/NAME afterwards.  Output normalised: timestamps go.
session() { # NAME QEMU-IMG
    local name=$1 d=$W/run pid
    rm -rf "$d"
    wrapper "$d" "$2"
    [ "$(id -u)" = 0 ] && chown -R 65534:65534 "$W"
    local env=(env -i HOME="$d/home" XDG_CONFIG_HOME="$d/home/config"
               XDG_RUNTIME_DIR="$d/home/run" XDG_CACHE_HOME="$d/home/cache"
               XDG_DATA_HOME="$d/home/data" PATH="$d/bin:/usr/sbin:/usr/bin:/sbin:/bin"
               LC_ALL=C)
    "${AS[@]}" mkdir -p "$d/home/config" "$d/home/run" "$d/home/cache" "$d/home/data" "$d/pool"
    "${AS[@]}" chmod 700 "$d/home/run"
    "${AS[@]}" "${env[@]}" libvirtd --timeout 600 >"$d/libvirtd.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    local sock=$d/home/run/libvirt/libvirt-sock
    for _ in $(seq 600); do [ -S "$sock" ] && break; sleep 0.1; done
    [ -S "$sock" ] || { cat "$d/libvirtd.log"; fail "$name: libvirtd did not start"; }

    local out=$d/out
    v() {
        echo "+ virsh $*" >>"$out"
        "${AS[@]}" "${env[@]}" virsh -q -c qemu:///session "$@" >>"$out" 2>&1 ||
            echo "exit $?" >>"$out"
    }
    vol_xml() { # NAME FORMAT CAPACITY
        printf "<volume><name>%s</name><capacity>%s</capacity><target><format type='%s'/></target></volume>\n" \
            "$1" "$3" "$2" >"$d/$1.xml"
    }
    v pool-create-as p dir --target "$d/pool"
    for f in raw qcow2; do
        v vol-create-as p "a.$f" 16M --format "$f"
        # Guest data at 1 MiB: libvirt uploads raw bytes; a qcow2 is written
        # by the real qemu-io (the same in both runs).
        if [ "$f" = raw ]; then
            v vol-upload --pool p a.raw "$W/data" --offset 1048576
        else
            retry_setup "${AS[@]}" qemu-io -f qcow2 -c "write -P 0x5c 1M 1M" -c "write -P 0x6d 9M 64k" \
                "$d/pool/a.qcow2" >/dev/null || fail "$name: qemu-io on a.qcow2"
        fi
        v vol-info --pool p "a.$f"
        v vol-clone --pool p "a.$f" "b.$f"
        v vol-resize --pool p "b.$f" 32M
        v vol-info --pool p "b.$f"
        v vol-resize --pool p "b.$f" 24M --shrink
        v vol-info --pool p "b.$f"
        v vol-dumpxml --pool p "b.$f"
        v vol-download --pool p "b.$f" "$d/b.$f.download"
    done
    v vol-create-as p c.qcow2 8M --format qcow2 --prealloc-metadata
    v vol-create-as p d.qcow2 8M --format qcow2 --backing-vol a.qcow2 --backing-vol-format qcow2
    vol_xml e.raw raw 16777216
    v vol-create-from p "$d/e.raw.xml" --inputpool p a.qcow2
    vol_xml f.qcow2 qcow2 16777216
    v vol-create-from p "$d/f.qcow2.xml" --inputpool p a.raw
    for vol in c.qcow2 d.qcow2 e.raw f.qcow2; do
        v vol-info --pool p "$vol"
        v vol-dumpxml --pool p "$vol"
        v vol-download --pool p "$vol" "$d/$vol.download"
    done
    v vol-list p --details
    kill "$pid"; wait "$pid" 2>/dev/null || true
    sed -i -e "s|$d|@W@|g" -e '/<[amcb]time>/d' "$out" "$d/calls"
    # The real qemu-img finds every qcow2 volume clean (d.qcow2's backing
    # file is found by its path in run/, hence here).
    for vol in b.qcow2 c.qcow2 d.qcow2 f.qcow2; do
        qemu-img check -q "$d/pool/$vol" || fail "$name: qemu-img check of $vol"
    done
    mv "$d" "$W/$name"
}
session qemu "$(command -v qemu-img)"
session vdk "$W/impl/img-tool/vdk-img"

diff -u "$W/qemu/out" "$W/vdk/out" >&2 || fail "virsh printed something else with vdk-img"
diff -u "$W/qemu/calls" "$W/vdk/calls" >&2 || fail "libvirt ran other qemu-img commands"
[ -s "$W/vdk/calls" ] || fail "libvirt never ran qemu-img"
if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$W/vdk/stderr"; then
    cat "$W/vdk/stderr" >&2; fail "sanitizer report from vdk-img under libvirt"
fi
# Byte for byte, but for one known difference: c.qcow2, created with
# preallocation=falloc (libvirt's --prealloc-metadata), where qemu-img moves
# the refcount table behind the L1 table (qcow2_refcount_area) and puts the
# L2 table in the freed cluster, while vdk keeps the table and puts the L2
# table after the L1; same size, allocation and guest content.
for f in "$W"/qemu/*.download; do
    b=$(basename "$f")
    [ -f "$W/vdk/$b" ] || fail "vdk run did not download $b"
    if [ "$b" = c.qcow2.download ]; then
        qemu-img compare -f qcow2 -F qcow2 "$f" "$W/vdk/$b" >/dev/null ||
            fail "guest content of $b differs"
        continue
    fi
    cmp "$f" "$W/vdk/$b" || fail "downloaded $b differs"
done
echo "ok $(wc -l <"$W/vdk/calls") qemu-img runs by libvirt, identical results"
cat "$W/vdk/calls"
