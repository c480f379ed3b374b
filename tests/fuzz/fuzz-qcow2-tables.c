/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the qcow2 table walk.  The input image is opened
 * read-only, its block status walked and its first MiB read, and it is
 * checked; then it is opened read-write and written, zeroed, discarded,
 * compressed into, flushed and checked again.  Last it is opened as
 * check -r does (corrupt images allowed) and repaired, which may rebuild
 * the refcount structures, then checked once more.  Damaged tables must
 * give errors, never crashes, hangs or writes outside the file.
 */
#include "fuzz-qcow2-common.h"
#include "fuzz-qcow2-mutator.h"

#define READ_LIMIT (1u << 20)

static void read_side(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    uint64_t size = vdk_min_u64(s->size, READ_LIMIT), off = 0;
    uint8_t *buf = malloc(READ_LIMIT);
    for (int i = 0; i < 256 && off < size; i++) {
        uint64_t pnum = 0, map = 0;
        struct vdk_node *f = NULL;
        if (qcow2_block_status(n, off, size - off, &pnum, &map, &f) < 0 || !pnum)
            break;
        off += pnum;
    }
    if (buf && size)
        (void)qcow2_pread(n, 0, size, buf, 0);
    free(buf);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    (void)qcow2_check(n, &res, 0, NULL);
}

static void write_side(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    if (s->size < 4096)
        return;
    uint8_t *buf = calloc(1, s->cluster_size > 4096 ? s->cluster_size : 4096);
    if (!buf)
        return;
    memset(buf, 0x5a, 1000);
    uint64_t last = vdk_align_down(s->size - 1, s->cluster_size);
    (void)qcow2_pwrite(n, 512, 1000, buf, 0);
    (void)qcow2_pwrite(n, s->size - 1024, 1024, buf, 0);
    (void)qcow2_pwrite_zeroes(n, 0, vdk_min_u64(s->size, s->cluster_size),
                              VDK_REQ_MAY_UNMAP);
    (void)qcow2_discard(n, last, s->size - last);
    if (s->size >= s->cluster_size)
        (void)qcow2_pwrite(n, 0, s->cluster_size, buf, VDK_REQ_COMPRESSED);
    (void)qcow2_pwrite(n, 100, 3000, buf, 0);
    free(buf);
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    (void)qcow2_check(n, &res, VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (!file)
        return 0;
    fuzz_with(file, 0, read_side);
    fuzz_with(file, VDK_O_RDWR, write_side);
    struct vdk_node n;
    memset(&n, 0, sizeof(n));
    if (fuzz_open(&n, file, VDK_O_RDWR | VDK_O_CHECK_REPAIR) == 0) {
        struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
        (void)qcow2_check(&n, &res, VDK_CHECK_FIX_LEAKS | VDK_CHECK_FIX_ERRORS, NULL);
        (void)qcow2_check(&n, &res, 0, NULL);
        fuzz_close(&n);
    }
    vdk_node_unref(file);
    return 0;
}
