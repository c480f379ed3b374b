/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: format probing and opening an image of unknown format.
 * The input becomes the contents of "memory://fuzz", opened read-only with
 * no format given, so every format's probe and then the chosen driver's
 * open run on it.  After a successful open: info, a bounded walk of block
 * status, reads at the start and the end, check and the snapshot list.
 * Backing files are not opened: their names come from the input, and a
 * fuzzer must not wander the host's file system.
 *
 * Checked beyond "no crash": a failed open says why and leaves no node; a
 * successful one answers block status within bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "block/driver.h"
#include "protocols/memory.h"
#include "vdk/block.h"
#define FQ_CUSTOM_MUTATOR /* below: magics first, qcow2 tables for qcow2 */
#include "fuzz-qcow2-mutator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Structure-aware mutator: what the probes look at is magic numbers at
 * fixed places (the start, byte 64, byte 257, the last sector), so one
 * format's body gets another's magic (or a second magic beside its own,
 * or a magic with nothing after it), and the chosen driver opens
 * something that is not its format; qcow2 inputs also get the qcow2
 * table mutations.
 */
static const struct {
    const char *magic;
    unsigned len;
    int at;            /* -1: the last 512 bytes */
} probe_magics[] = {
    { "QFI\xfb\0\0\0\3", 8, 0 }, { "QFI\xfb\0\0\0\2", 8, 0 }, { "QFI\xfb\0\0\0\1", 8, 0 },
    { "conectix", 8, -1 }, { "conectix", 8, 0 }, { "vhdxfile", 8, 0 }, { "KDMV\1\0\0\0", 8, 0 },
    { "COWD", 4, 0 }, { "# Disk DescriptorFile\n", 22, 0 },
    { "<<< Oracle VM VirtualBox Disk Image >>>\n", 40, 0 }, { "\x7f\x10\xda\xbe", 4, 64 },
    { "WithoutFreeSpace", 16, 0 }, { "WithouFreSpacExt", 16, 0 }, { "LUKS\xba\xbe\0\1", 8, 0 },
    { "LUKS\xba\xbe\0\2", 8, 0 }, { "SKUL\xba\xbe\0\2", 8, 0 }, { "ustar\0" "00", 8, 257 },
    { "ustar  \0", 8, 257 },
};
#define PROBE_NMAGICS (sizeof(probe_magics) / sizeof(probe_magics[0]))

static bool probe_step(struct fmut *m)
{
    if (fm_rand(m, 2) && fq_step(m))
        return true;
    unsigned k = fm_rand(m, PROBE_NMAGICS);
    unsigned len = probe_magics[k].len;
    uint64_t at = probe_magics[k].at < 0 ? (m->size >= 512 ? m->size - 512 : 0)
                                         : (uint64_t)probe_magics[k].at;
    switch (fm_rand(m, 4)) {
    case 0: /* the magic and nothing after it */
        if (at + len > m->max)
            return false;
        if (m->size < at)
            memset(m->data + m->size, 0, at - m->size);
        m->size = at + len;
        break;
    case 1: /* only part of the magic */
        len = 1 + fm_rand(m, len - 1);
        /* fall through */
    default:
        if (!fm_in(m, at, len))
            return false;
        break;
    }
    memcpy(m->data + at, probe_magics[k].magic, len);
    return true;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    return fm_run(data, size, max_size, seed, probe_step, NULL);
}

#define MAX_INPUT (4u << 20)
#define MAX_STATUS_STEPS 256
#define READ_BYTES (64u * 1024)

static void quiet(const char *msg, void *opaque)
{
}

static void exercise(struct vdk_node *n)
{
    struct vdk_error *err = NULL;
    struct vdk_image_info info = VDK_IMAGE_INFO_INIT;
    if (vdk_get_info(n, &info, &err) == 0)
        vdk_image_info_clear(&info);
    vdk_error_free(err);
    err = NULL;

    int64_t len = vdk_get_length(n);
    if (len <= 0)
        return;
    uint64_t off = 0;
    for (int i = 0; i < MAX_STATUS_STEPS && off < (uint64_t)len; i++) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *file = NULL;
        int depth = 0;
        int r = vdk_block_status_above(n, NULL, off, (uint64_t)len - off, &pnum, &map,
                                       &file, &depth);
        if (r < 0)
            break;
        if (pnum == 0 || pnum > (uint64_t)len - off)
            abort();
        off += pnum;
    }

    uint8_t *buf = malloc(READ_BYTES);
    if (buf) {
        uint64_t l = (uint64_t)len;
        uint64_t c = l < READ_BYTES ? l : READ_BYTES;
        (void)vdk_pread(n, buf, c, 0, 0);
        (void)vdk_pread(n, buf, c, l - c, 0);
        (void)vdk_pread(n, buf, 1, l / 2, 0);
        free(buf);
    }

    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    (void)vdk_check(n, &res, 0, &err);
    vdk_error_free(err);
    err = NULL;
    struct vdk_snapshot_info *list = NULL;
    int count = 0;
    if (vdk_snapshot_list(n, &list, &count, &err) == 0)
        vdk_snapshot_list_free(list, count);
    vdk_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    vdk_set_warning_handler(quiet, NULL);
    if (vdk_memory_preset("fuzz", data, size) < 0)
        return 0;
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    int r = vdk_open(&n, "memory://fuzz", NULL, NULL, VDK_O_NO_BACKING, &err);
    if (r < 0) {
        if (n || !err || !err->msg[0])
            abort();
        vdk_error_free(err);
    } else {
        if (!n || err)
            abort();
        exercise(n);
        vdk_close(n);
    }
    vdk_memory_preset("fuzz", NULL, 0);
    return 0;
}
