#!/bin/bash
# SPDX-License-Identifier: MIT
# The project's one test command, for a fresh Debian 12 machine:
#   ./scripts/test.sh
# 1. installs every build and test dependency (as root, or through sudo);
# 2. builds build/ (plain) and build-asan/ (AddressSanitizer +
#    UndefinedBehaviorSanitizer), both with warnings as errors;
# 3. runs the whole suite in each and prints "N passed, N failed, N skipped"
#    for both together as its last line.  Exit status 0 only if both
#    builds built and every test passed or skipped.
#
# Environment:
#   VDK_SKIP_APT=1   skip the package step (quick local runs)
#   VDK_JOBS=N       parallel compile jobs (default: number of CPUs)
#   VDK_MESON_TEST_ARGS  extra arguments for meson test (e.g. "--suite unit")
set -u

# Everything the build and the tests need, one list (Debian package names).
# Add packages here.
VDK_PACKAGES="
  gcc libc6-dev pkg-config meson ninja-build python3
  zlib1g-dev libzstd-dev libdeflate-dev libssl-dev libnbd-dev libcmocka-dev libjson-c-dev
  libargon2-dev librbd-dev
  clang libclang-rt-14-dev scdoc bash-completion
  qemu-utils qemu-system-x86 libnbd-bin python3-libnbd nbdkit cryptsetup-bin
  busybox-static cpio kmod fio hyperfine strace valgrind
  e2fsprogs dosfstools mtools fdisk
  libvhdi-utils python3-libvhdi
  dpkg-dev debhelper lintian systemd libvirt-daemon libvirt-clients
  libvmdk-utils python3-vmdkstream
  ceph-mon ceph-osd ceph-mgr qemu-block-extra jq
"

cd "$(dirname "$0")/.." || exit 1
jobs=${VDK_JOBS:-$(nproc)}

say() { printf '==> %s\n' "$*"; }

install_packages() {
    local sudo=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install packages" >&2; return 1; }
        sudo="sudo -n"
    fi
    say "installing packages"
    # Wait (up to 10 minutes) for another apt/dpkg to let go of its lock
    # instead of failing at once, and retry the index download, which a
    # network hiccup can break.
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600) try
    for try in 1 2 3; do
        $sudo "${apt[@]}" update -q </dev/null && break
        [ "$try" = 3 ] && return 1
        echo "apt-get update failed (attempt $try of 3), retrying in $((try * 10)) s" >&2
        sleep $((try * 10))
    done
    # shellcheck disable=SC2086
    $sudo "${apt[@]}" install -y -q --no-install-recommends $VDK_PACKAGES </dev/null
}

if [ "${VDK_SKIP_APT:-0}" != 1 ]; then
    install_packages || { echo "package installation failed" >&2; exit 1; }
fi

# Configure (or reconfigure, so reruns are cheap) and build one tree.
build() {
    local dir=$1; shift
    local opts=(-Dwerror=true "$@") log rc=0
    log=$(mktemp)
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "${opts[@]}" >"$log" 2>&1 || rc=$?
    else
        meson setup "$dir" "${opts[@]}" >"$log" 2>&1 || rc=$?
    fi
    [ "$rc" -eq 0 ] || cat "$log"
    rm -f "$log"
    [ "$rc" -eq 0 ] && ninja -C "$dir" -j "$jobs"
}

passed=0 failed=0 skipped=0 status=0

# Add one tree's results (meson-logs/testlog.json) to the totals.
count() {
    local counts
    counts=$(python3 - "$1/meson-logs/testlog.json" <<'EOF'
import json, sys
ok = fail = skip = 0
try:
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                ok += 1
            elif r == "SKIP":
                skip += 1
            else:
                fail += 1
except FileNotFoundError:
    pass
print(ok, fail, skip)
EOF
)
    read -r p f s <<<"$counts"
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

run_tree() {
    local dir=$1 mult=$2; shift 2
    # No stale results: the counts and the slowest list read this file.
    rm -f "$dir/meson-logs/testlog.json"
    say "building $dir"
    if ! build "$dir" "$@"; then
        echo "$dir: build failed" >&2
        failed=$((failed + 1)) status=1
        return
    fi
    say "testing $dir"
    local before=$failed rc=0
    # shellcheck disable=SC2086
    meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" \
        ${VDK_MESON_TEST_ARGS:-} </dev/null || rc=$?
    count "$dir"
    if [ "$rc" -ne 0 ]; then
        status=1
        # meson itself failed (bad arguments, interrupted): count that too.
        [ "$failed" -gt "$before" ] || { echo "$dir: meson test failed" >&2; failed=$((failed + 1)); }
    fi
}

start=$(date +%s)
run_tree build 1
# Sanitizers stop at the first report (halt_on_error) and LeakSanitizer is
# on: tests/meson.build sets ASAN_OPTIONS/UBSAN_OPTIONS for every test.
run_tree build-asan 3 -Db_sanitize=address,undefined -Db_lundef=false

# Make sure the sanitizer build really is one.
if [ -x build-asan/tests/unit/test-io ] &&
   ! ldd build-asan/tests/unit/test-io | grep -q libasan; then
    echo "build-asan is not built with AddressSanitizer" >&2
    failed=$((failed + 1)) status=1
fi

# The time budget stays visible: total wall time and the slowest tests of
# both trees (meson-logs/testlog.json records each test's duration).
slowest() {
    python3 - build/meson-logs/testlog.json build-asan/meson-logs/testlog.json <<'EOF'
import json, sys
rows = []
for path in sys.argv[1:]:
    tree = path.split("/")[0]
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows.append((r.get("duration") or 0.0, tree, r.get("name", "?"),
                                 r.get("result", "?")))
    except FileNotFoundError:
        pass
for d, tree, name, res in sorted(rows, reverse=True)[:10]:
    print(f"  {d:7.1f} s  {tree:<10} {name} ({res})")
EOF
}
elapsed=$(($(date +%s) - start))
say "slowest tests"
slowest
say "total time $((elapsed / 60)) min $((elapsed % 60)) s (both builds and test runs)"

[ "$failed" -eq 0 ] || status=1
echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
