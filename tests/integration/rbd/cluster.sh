# SPDX-License-Identifier: MIT
# A throwaway one-node Ceph cluster for the rbd tests and bench/rbd.
# Source it, then:
#   ceph_cluster_start DIR   - start a monitor on 127.0.0.1 (a free port),
#                              one memstore OSD and (VDK_CEPH_MGR=1) a
#                              manager, with no cephx and pool size 1; make
#                              the pool "vdk" ready for rbd.  Everything
#                              (conf, keyring, data, logs, pids, sockets)
#                              lives under DIR.  Exports CEPH_CONF (librados
#                              reads it, so qemu-img, rbd and vdk find the
#                              cluster) and CEPH_START_SECONDS.
#   ceph_cluster_stop        - stop the daemons by the PIDs recorded in
#                              DIR/pids (TERM, then KILL after a bound);
#                              safe to call twice and from an EXIT trap.
#   ceph_daemon_pid NAME     - the PID recorded for NAME (mon.a, osd.0, ...)
# Every wait is bounded (VDK_CEPH_WAIT seconds, default 120): a cluster that
# does not come up is a one-line failure with the log's tail, never a hang.
# Daemons are never looked up or stopped by name.

CEPH_DIR=
CEPH_WAIT=${VDK_CEPH_WAIT:-120}

ceph_log_tail() {
    local f
    for f in "$CEPH_DIR"/log/*.log "$CEPH_DIR"/log/*.out; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
}

ceph_fail() {
    echo "ceph test cluster: $*" >&2
    ceph_log_tail
    ceph_cluster_stop
    return 1
}

# A TCP port nothing listens on (the monitor's bind is the real check: a
# lost race fails start-up, which the caller's retry covers).
ceph_free_port() {
    local p i
    for i in $(seq 1 50); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
        if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"; return 0
        fi
    done
    return 1
}

# Run a daemon in the foreground of a background job and record its PID.
ceph_spawn() {
    local name=$1; shift
    "$@" -f -c "$CEPH_DIR/ceph.conf" >"$CEPH_DIR/log/$name.out" 2>&1 </dev/null &
    echo "$name $!" >>"$CEPH_DIR/pids"
}

ceph_daemon_pid() {
    awk -v n="$1" '$1 == n { p = $2 } END { if (p) print p }' "$CEPH_DIR/pids"
}

ceph_alive() {
    local pid
    pid=$(ceph_daemon_pid "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# ceph CLI with bounded waits on the monitor.
ceph_cli() { timeout 60 ceph --connect-timeout 20 -c "$CEPH_DIR/ceph.conf" "$@"; }

ceph_write_conf() {
    local port=$1 fsid=$2 d=$CEPH_DIR
    cat >"$d/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$port
mon_initial_members = a
ms_bind_msgr1 = false
public_network = 127.0.0.0/8
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_allow_insecure_global_id_reclaim = true
keyring = $d/keyring
run_dir = $d/run
admin_socket = $d/run/\$name.asok
pid_file = $d/run/\$name.pid
log_file = $d/log/\$name.log
log_to_stderr = false
err_to_stderr = true
mon_cluster_log_file = $d/log/cluster.log
mon_data = $d/mon/\$name
osd_data = $d/osd/\$name
mgr_data = $d/mgr/\$name
crash_dir = $d/crash
exporter_sock_dir = $d/run
osd_objectstore = memstore
memstore_device_bytes = ${VDK_CEPH_MEMSTORE_BYTES:-3221225472}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_warn_on_pool_no_redundancy = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0
osd_op_num_shards = 1
osd_op_num_threads_per_shard = 2
osd_memory_target = 939524096
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
osd_heartbeat_grace = 20
mon_osd_down_out_interval = 0
debug_ms = 0
[client]
client_mount_timeout = 30
rados_mon_op_timeout = 30
rados_osd_op_timeout = 30
log_file = $d/log/client.\$pid.log
admin_socket =
EOF
}

ceph_start_once() {
    local d=$CEPH_DIR port fsid osd_uuid i
    port=$(ceph_free_port) || { echo "no free port" >&2; return 1; }
    fsid=$(cat /proc/sys/kernel/random/uuid)
    osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    rm -rf "${d:?}"/{mon,osd,mgr,run,log,crash} "$d/ceph.conf" "$d/keyring" "$d/monmap"
    mkdir -p "$d"/{mon/mon.a,osd/osd.0,mgr/mgr.x,run,log,crash}
    : >"$d/pids"
    ceph_write_conf "$port" "$fsid"
    ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' \
        >/dev/null || return 1
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$d/monmap" \
        >/dev/null || return 1
    ceph-mon --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" \
        -c "$d/ceph.conf" >"$d/log/mon-mkfs.out" 2>&1 || return 1
    ceph_spawn mon.a ceph-mon -i a
    # The monitor answers (quorum of one).
    for i in $(seq 1 "$CEPH_WAIT"); do
        ceph_alive mon.a || { echo "ceph-mon exited" >&2; return 1; }
        timeout 10 ceph --connect-timeout 5 -c "$d/ceph.conf" mon stat \
            >/dev/null 2>&1 && break
        [ "$i" -lt "$CEPH_WAIT" ] || { echo "monitor not up in ${CEPH_WAIT}s" >&2; return 1; }
        sleep 1
    done
    ceph_cli osd new "$osd_uuid" >/dev/null || return 1
    ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" -c "$d/ceph.conf" \
        >"$d/log/osd-mkfs.out" 2>&1 || return 1
    ceph_spawn osd.0 ceph-osd -i 0
    if [ "${VDK_CEPH_MGR:-0}" = 1 ]; then
        ceph_spawn mgr.x ceph-mgr -i x
    fi
    ceph_cli osd pool create vdk 8 8 replicated >/dev/null 2>&1 || return 1
    ceph_cli osd pool set vdk size 1 --yes-i-really-mean-it >/dev/null 2>&1 || return 1
    ceph_cli osd pool application enable vdk rbd >/dev/null 2>&1 || return 1
    # Ready when an object write goes through: the OSD booted, joined the
    # map and every placement group it got is active.
    for i in $(seq 1 "$CEPH_WAIT"); do
        ceph_alive osd.0 || { echo "ceph-osd exited" >&2; return 1; }
        echo ready | timeout 10 rados -c "$d/ceph.conf" -p vdk put vdk-ready - \
            >/dev/null 2>&1 && break
        [ "$i" -lt "$CEPH_WAIT" ] || { echo "OSD not serving in ${CEPH_WAIT}s" >&2; return 1; }
        sleep 1
    done
    timeout 60 rbd -c "$d/ceph.conf" pool init vdk >/dev/null 2>&1 || return 1
}

ceph_cluster_start() {
    CEPH_DIR=$1
    mkdir -p "$CEPH_DIR"
    local t0 try
    t0=$(date +%s.%N)
    for try in 1 2 3; do
        if ceph_start_once; then
            CEPH_START_SECONDS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
            export CEPH_CONF=$CEPH_DIR/ceph.conf CEPH_START_SECONDS
            return 0
        fi
        echo "ceph test cluster: start-up attempt $try of 3 failed" >&2
        ceph_log_tail
        ceph_cluster_stop_daemons
    done
    ceph_fail "did not start (logs under $CEPH_DIR/log)"
}

# TERM each recorded daemon, KILL what is left after 20 s.
ceph_cluster_stop_daemons() {
    [ -n "$CEPH_DIR" ] && [ -f "$CEPH_DIR/pids" ] || return 0
    local name pid i left
    while read -r name pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done <"$CEPH_DIR/pids"
    for i in $(seq 1 40); do
        left=0
        while read -r name pid; do
            kill -0 "$pid" 2>/dev/null && left=1
        done <"$CEPH_DIR/pids"
        [ "$left" = 0 ] && break
        sleep 0.5
    done
    while read -r name pid; do
        kill -KILL "$pid" 2>/dev/null || true
    done <"$CEPH_DIR/pids"
    # Reap our children so no zombie outlives the test.
    while read -r name pid; do
        wait "$pid" 2>/dev/null || true
    done <"$CEPH_DIR/pids"
    : >"$CEPH_DIR/pids"
}

ceph_cluster_stop() {
    ceph_cluster_stop_daemons
    return 0
}
