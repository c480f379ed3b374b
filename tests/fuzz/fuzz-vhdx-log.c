/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the VHDX log.  The input is a log GUID (16 bytes),
 * which goes into both headers, and the log region's contents; the
 * checksum-fixing variant also recomputes each entry's CRC-32C, so entry
 * headers, descriptors, data sectors, sequences and replay targets are
 * reached (read-only: replay in memory; read-write: in place).
 */
#include "fuzz-vhdx-common.h"
#include "fuzz-vhdx-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_log(uint8_t *img, const uint8_t *data, size_t size)
{
    if (size < 16)
        return;
    memcpy(img + VHDX_HEADER1_OFF + 48, data, 16);
    memcpy(img + VHDX_HEADER2_OFF + 48, data, 16);
    size -= 16;
    memcpy(img + FV_LOG, data + 16, size < FV_LOG ? size : FV_LOG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fv_run(data, size, 0, 0, put_log);
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, fvx_log_step, NULL);
}
