/* SPDX-License-Identifier: MIT */
/*
 * A tiny libvdk program for the nbd protocol driver tests:
 *   vdk-nbd-client read URI OUT      copy the export to a file (4 threads)
 *   vdk-nbd-client write URI IN      copy a file onto the export, flush
 *   vdk-nbd-client map URI           "offset length data|zero" per extent
 *   vdk-nbd-client zero URI OFF LEN  write zeroes (may unmap)
 * Exit 0 on success, 1 with a one-line error otherwise.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdk/block.h"

#define CHUNK (1u << 20)
#define THREADS 4

struct job {
    struct vdk_node *n;
    FILE *f;
    uint64_t size;
    int idx;
    bool writing;
    int err;
};

static void *copy_part(void *arg)
{
    struct job *j = arg;
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        j->err = -ENOMEM;
        return NULL;
    }
    for (uint64_t off = (uint64_t)j->idx * CHUNK; off < j->size; off += THREADS * CHUNK) {
        uint64_t n = j->size - off < CHUNK ? j->size - off : CHUNK;
        if (j->writing) {
            if (pread(fileno(j->f), buf, n, (off_t)off) != (ssize_t)n) {
                j->err = -EIO;
                break;
            }
            j->err = vdk_pwrite(j->n, buf, n, off, 0);
        } else {
            j->err = vdk_pread(j->n, buf, n, off, 0);
            if (!j->err && pwrite(fileno(j->f), buf, n, (off_t)off) != (ssize_t)n)
                j->err = -EIO;
        }
        if (j->err)
            break;
    }
    free(buf);
    return NULL;
}

static int copy(struct vdk_node *n, const char *path, bool writing)
{
    FILE *f = fopen(path, writing ? "rb" : "wb");
    if (!f) {
        fprintf(stderr, "vdk-nbd-client: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct job jobs[THREADS];
    pthread_t t[THREADS];
    uint64_t size = (uint64_t)vdk_get_length(n);
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){ n, f, size, i, writing, 0 };
        pthread_create(&t[i], NULL, copy_part, &jobs[i]);
    }
    int err = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (jobs[i].err)
            err = jobs[i].err;
    }
    if (!err && writing)
        err = vdk_flush(n);
    fclose(f);
    if (err)
        fprintf(stderr, "vdk-nbd-client: copy failed: %s\n", strerror(-err));
    return err ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vdk-nbd-client read|write|map|zero URI [ARGS]\n");
        return 1;
    }
    const char *cmd = argv[1];
    bool rw = !strcmp(cmd, "write") || !strcmp(cmd, "zero");
    struct vdk_node *n = NULL;
    struct vdk_error *err = NULL;
    if (vdk_open(&n, argv[2], "raw", NULL, rw ? VDK_O_RDWR : 0, &err) < 0) {
        vdk_error_report("vdk-nbd-client", err);
        return 1;
    }
    int rc = 1;
    if ((!strcmp(cmd, "read") || !strcmp(cmd, "write")) && argc == 4) {
        rc = copy(n, argv[3], rw);
    } else if (!strcmp(cmd, "map") && argc == 3) {
        uint64_t size = (uint64_t)vdk_get_length(n), off = 0;
        rc = 0;
        while (off < size) {
            uint64_t pnum = 0;
            int r = vdk_block_status(n, off, size - off, &pnum, NULL, NULL);
            if (r < 0) {
                fprintf(stderr, "vdk-nbd-client: block status: %s\n", strerror(-r));
                rc = 1;
                break;
            }
            printf("%" PRIu64 " %" PRIu64 " %s\n", off, pnum,
                   (r & VDK_BS_DATA) ? "data" : "zero");
            off += pnum;
        }
    } else if (!strcmp(cmd, "zero") && argc == 5) {
        int r = vdk_pwrite_zeroes(n, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
                                  VDK_REQ_MAY_UNMAP);
        if (r == 0)
            r = vdk_flush(n);
        if (r < 0)
            fprintf(stderr, "vdk-nbd-client: zero: %s\n", strerror(-r));
        rc = r < 0;
    } else {
        fprintf(stderr, "vdk-nbd-client: bad arguments\n");
    }
    if (vdk_close(n) < 0)
        rc = 1;
    return rc;
}
