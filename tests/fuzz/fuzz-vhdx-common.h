/* SPDX-License-Identifier: MIT */
/*
 * Shared body of the VHDX fuzz targets.  Each target overlays its input on
 * one structure of a valid template image (made once by the driver's own
 * create: log at 1 MiB, BAT at 2 MiB, metadata at 3 MiB, 1 MiB blocks) and
 * runs the format exercise of fuzz-format.h on the result: read-only as
 * given (in-memory log replay), and read-write with the CRC-32C fields
 * recomputed so that mutations get past the checksums into the parsers,
 * the replay and the writers behind them.
 */
#ifndef VDK_FUZZ_VHDX_COMMON_H
#define VDK_FUZZ_VHDX_COMMON_H

#include <stdlib.h>
#include <string.h>

#include "formats/fmt-util.h"
#include "formats/vhdx/vhdx.h"
#include "fuzz-format.h"

#define FV_LEN    (4u << 20)   /* template: up to the end of the metadata */
#define FV_LOG    (1u << 20)
#define FV_BAT    (2u << 20)
#define FV_META   (3u << 20)

static uint8_t *fv_template(void)
{
    static uint8_t *t;
    if (t)
        return t;
    const struct vdk_driver *drv = vdk_driver_find("vhdx");
    struct vdk_node *mem = fuzz_memory(NULL, 0);
    struct vdk_opts *o = vdk_opts_new();
    if (!drv || !mem || !o || vdk_opts_parse(o, "size=8M,block_size=1M", NULL, NULL) < 0 ||
        drv->create(NULL, mem, o, NULL) < 0 || !(t = calloc(1, FV_LEN)) ||
        vdk_pread(mem, t, FV_LEN, 0, 0) < 0)
        abort();
    vdk_opts_free(o);
    vdk_node_unref(mem);
    return t;
}

/* Recompute the header and region-table checksums. */
static void fv_fix_sums(uint8_t *img)
{
    static const uint32_t at[4][2] = { { 65536, 4096 }, { 131072, 4096 },
                                       { 196608, 65536 }, { 262144, 65536 } };
    for (int i = 0; i < 4; i++)
        fmt_put_le32(img + at[i][0] + 4, vhdx_checksum(img + at[i][0], at[i][1], 4));
}

/* Recompute the checksum of every log entry whose length fits. */
static void fv_fix_log(uint8_t *img)
{
    for (uint32_t p = 0; p < FV_LOG; p += 4096) {
        uint8_t *e = img + FV_LOG + p;
        uint32_t len = fmt_le32(e + 8);
        if (memcmp(e, "loge", 4) == 0 && len && len % 4096 == 0 && len <= FV_LOG - p)
            fmt_put_le32(e + 4, vhdx_checksum(e, len, 4));
    }
}

/* Overlay data at off (at most max bytes) and exercise both variants. */
static inline int fv_run(const uint8_t *data, size_t size, uint64_t off, size_t max,
                         void (*tweak)(uint8_t *img, const uint8_t *data, size_t size))
{
    vdk_set_warning_handler(fuzz_format_quiet, NULL);
    uint8_t *img = malloc(FV_LEN);
    if (!img)
        return 0;
    for (int fix = 0; fix < 2; fix++) {
        memcpy(img, fv_template(), FV_LEN);
        if (tweak)
            tweak(img, data, size);
        else
            memcpy(img + off, data, size < max ? size : max);
        if (fix) {
            fv_fix_log(img);
            fv_fix_sums(img);
        }
        /* as given: read-only; checksums fixed: read-write (replay in
           place, allocation, log writes, repair), which gets past the
           headers */
        fuzz_format_one("vhdx", img, FV_LEN, fix);
    }
    free(img);
    return 0;
}

#endif /* VDK_FUZZ_VHDX_COMMON_H */
