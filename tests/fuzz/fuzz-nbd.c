/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for vdk-nbd's protocol code: the input is everything a
 * client sends (handshake options, then requests with their payloads),
 * fed through the real handshake and transmission code over an in-memory
 * transport, against a 1 MiB memory-backed export with 512-byte alignment
 * (so unaligned requests take the read-modify-write path) plus a read-only
 * one.  Requests run inline (no worker threads) so a run is deterministic.
 * The structure-aware mutator (fuzz-nbd-mutator.h) edits option and
 * request sequences.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-server/server.h"
#include "fuzz-nbd-mutator.h"

static struct nbd_server srv;
static struct nbd_export *exports[2];

static void setup(void)
{
    static const char *const names[2] = { "", "ro" };
    for (int i = 0; i < 2; i++) {
        struct vdk_opts *o = vdk_opts_new();
        struct vdk_node *n = NULL;
        if (!o || vdk_opts_parse(o, "file.size=1M,file.align=512", NULL, NULL) < 0 ||
            vdk_open(&n, "memory://fuzz", "raw", o, i == 0 ? VDK_O_RDWR : 0, NULL) < 0)
            abort();
        exports[i] = nbd_export_new(names[i], "memory://fuzz", "raw");
        if (!exports[i])
            abort();
        exports[i]->description = i ? NULL : strdup("fuzz export");
        if (nbd_export_attach(exports[i], n, NULL) < 0)
            abort();
    }
    srv.exports = exports;
    srv.n_exports = 2;
    srv.tls_mode = NBD_TLS_OFF;
    srv.allocation_depth = true;
    srv.workers = 0;
    srv.max_inflight = 64u << 20;
    atomic_init(&srv.stopping, false);
    nbd_log_init(false, 0); /* quiet */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv.n_exports)
        setup();
    struct nbd_conn c;
    nbd_conn_init(&c, &srv);
    nbd_io_init_mem(&c.io, data, size);
    if (nbd_handshake(&c) == 0)
        nbd_transmission(&c);
    nbd_io_close(&c.io);
    nbd_conn_destroy(&c);
    return 0;
}
