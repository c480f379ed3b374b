/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: qcow2 persistent dirty bitmaps (the extension, the
 * directory, the bitmap tables and data).  The input image is opened
 * read-only (info, the list, every bitmap's dirty runs, check, measure),
 * then read-write: writes mark the bitmaps, the bitmap operations run, and
 * the close stores them; the result is opened and walked once more.
 * Damage must give errors, never crashes, hangs or writes outside the
 * memory file.
 */
#include <json-c/json.h>

#include "fuzz-qcow2-common.h"
#include "fuzz-qcow2-bitmap-mutator.h"

/* Dirty runs of every bitmap, at most this many steps each. */
#define STATUS_STEPS 4096

static void read_side(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    struct vdk_driver_info info = { 0 };
    if (qcow2_get_info(n, &info, NULL) == 0)
        json_object_put(info.format_specific);
    struct vdk_bitmap_info *l = NULL;
    int cnt = 0;
    if (vdk_driver_qcow2.bitmap_list(n, &l, &cnt, NULL) == 0) {
        for (int i = 0; i < cnt; i++) {
            uint64_t off = 0, pnum = 0;
            for (int k = 0; k < STATUS_STEPS && off < s->size; k++) {
                if (vdk_driver_qcow2.bitmap_status(n, l[i].name, off, s->size - off,
                                                   &pnum) < 0 || !pnum)
                    break;
                off += pnum;
            }
        }
        vdk_bitmap_list_free(l, cnt);
    }
    struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
    (void)qcow2_check(n, &res, 0, NULL);
    struct vdk_measure m = { .struct_size = sizeof(m) };
    (void)qcow2_measure(NULL, n, s->size, &m, NULL);
}

static void write_side(struct vdk_node *n)
{
    struct qcow2_state *s = n->opaque;
    static const uint8_t buf[4096];
    if (s->size >= 8192) {
        (void)qcow2_pwrite(n, 512, 3000, buf, 0);
        (void)qcow2_pwrite_zeroes(n, 4096, 4096, VDK_REQ_MAY_UNMAP);
        (void)qcow2_discard(n, 0, s->size);
    }
    const struct vdk_driver *d = &vdk_driver_qcow2;
    (void)d->bitmap_op(n, VDK_BITMAP_ADD, "fuzz-new", 0, NULL);
    (void)d->bitmap_op(n, VDK_BITMAP_ADD_DISABLED, "fuzz-off", 4096, NULL);
    struct vdk_bitmap_info *l = NULL;
    int cnt = 0;
    if (d->bitmap_list(n, &l, &cnt, NULL) == 0 && cnt > 0) {
        (void)d->bitmap_mark(n, "fuzz-off", 0, s->size);
        (void)d->bitmap_op(n, VDK_BITMAP_DISABLE, l[0].name, 0, NULL);
        (void)d->bitmap_op(n, VDK_BITMAP_CLEAR, l[cnt - 1].name, 0, NULL);
        (void)d->bitmap_op(n, VDK_BITMAP_REMOVE, l[cnt / 2].name, 0, NULL);
    }
    vdk_bitmap_list_free(l, cnt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (!file)
        return 0;
    fuzz_with(file, 0, read_side);
    if (fuzz_with(file, VDK_O_RDWR, write_side))
        fuzz_with(file, 0, read_side);
    vdk_node_unref(file);
    return 0;
}
