/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the qcow2 snapshot table.  The input image is opened
 * read-only and its snapshots listed; the first one is opened through the
 * snapshot.id option and read; then a read-write open creates, applies
 * and deletes snapshots and checks the image.  A damaged table must give
 * errors, never crashes, hangs or writes outside the file.
 */
#include "fuzz-qcow2-common.h"
#include "fuzz-qcow2-mutator.h"
#include "formats/qcow2/qcow2-snapshot.h"

#define READ_LIMIT (256u << 10)

static void read_snapshot(struct vdk_node *file, const char *id)
{
    struct vdk_node n;
    memset(&n, 0, sizeof(n));
    if (fuzz_open_opt(&n, file, 0, "snapshot.id", id) < 0)
        return;
    struct qcow2_state *s = n.opaque;
    uint64_t len = vdk_min_u64(s->size, READ_LIMIT);
    uint8_t *buf = malloc(READ_LIMIT);
    if (buf && len)
        (void)qcow2_pread(&n, 0, len, buf, 0);
    free(buf);
    fuzz_close(&n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vdk_node *file = fuzz_memory(data, size);
    if (!file)
        return 0;
    struct vdk_node n;
    struct vdk_snapshot_info *list = NULL;
    int count = 0;
    char first[128] = "";
    memset(&n, 0, sizeof(n));
    if (fuzz_open(&n, file, 0) == 0) {
        if (qcow2_snapshot_list(&n, &list, &count, NULL) == 0 && count > 0)
            snprintf(first, sizeof(first), "%s", list[0].id);
        vdk_snapshot_list_free(list, count);
        fuzz_close(&n);
    }
    if (*first)
        read_snapshot(file, first);
    memset(&n, 0, sizeof(n));
    if (fuzz_open(&n, file, VDK_O_RDWR) == 0) {
        (void)qcow2_snapshot_create(&n, "fuzz", NULL);
        if (*first) {
            (void)qcow2_snapshot_goto(&n, first, NULL);
            (void)qcow2_snapshot_delete(&n, first, NULL);
        }
        (void)qcow2_snapshot_goto(&n, "fuzz", NULL);
        (void)qcow2_snapshot_delete(&n, "fuzz", NULL);
        struct vdk_check_result res = VDK_CHECK_RESULT_INIT;
        (void)qcow2_check(&n, &res, 0, NULL);
        fuzz_close(&n);
    }
    vdk_node_unref(file);
    return 0;
}
